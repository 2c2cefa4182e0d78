/**
 * npm run test:durations: writes each file's duration in the last full run on this checkout
 * (vitest's own cache) to vitest.durations.json, which orders a fresh clone's files
 * (vitest.sequencer.ts). Run it after a full `npm test` when files were added or grew.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RECORDED_DURATIONS } from './vitest.sequencer.js';

const cacheDir = path.join('node_modules', '.vite', 'vitest');
const [runs] = readdirSync(cacheDir).map((dir) => path.join(cacheDir, dir, 'results.json'));
if (!runs) throw new Error(`no vitest results in ${cacheDir}: run npm test first`);
const { results } = JSON.parse(readFileSync(runs, 'utf8')) as { results: Array<[string, { duration: number }]> };
// the cache keeps files run once and deleted or renamed since: only the suite's own are ordered
const ofTheSuite = results.filter(([file]) => existsSync(file.slice(file.indexOf(':') + 1)));
const durations = Object.fromEntries(ofTheSuite.sort(([a], [b]) => (a < b ? -1 : 1)).map(([file, { duration }]) => [file, Math.round(duration / 100) / 10]));
writeFileSync(RECORDED_DURATIONS, `${JSON.stringify(durations, null, 2)}\n`);
console.log(`${ofTheSuite.length} files' durations written to ${RECORDED_DURATIONS}`);
