/**
 * Summarises a .cpuprofile (node --cpu-prof): self time per function and per package,
 * the text version of a flame graph's widest bars. Usage: tsx bench/src/top-functions.ts <file> [n]
 * The api and the worker run as bundles: their functions are named by the source file and line
 * the bundle's map gives (a package's own file for a dependency), so each package counts apart.
 */
import { readFileSync } from 'node:fs';
import type { SourceMap } from 'node:module';
import { bundledAppOf, readBundleMap, sourceOf } from '@orders/scripts/bundle-stack';
import { repoRoot } from './processes.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount: number;
}
const [file, count = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: top-functions <file.cpuprofile> [n]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
const total = profile.samples.length;
const maps = new Map<string, SourceMap>();
for (const app of new Set(profile.nodes.map((node) => bundledAppOf(node.callFrame.url)))) if (app) maps.set(app, await readBundleMap(repoRoot, app));

/** A call frame's file, from the checkout's root (or a node: module), and its 1-based line: a bundle's frame as its map has it. */
function placeOf({ url, lineNumber, columnNumber }: Node['callFrame']): { file: string; line: number } {
  const app = bundledAppOf(url);
  const source = app === undefined ? undefined : sourceOf(maps.get(app)!, app, lineNumber + 1, columnNumber + 1);
  return source ?? { file: url.replace(/^file:\/\//, '').replace(repoRoot, ''), line: lineNumber + 1 };
}

const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const node of profile.nodes) {
  const { functionName, url } = node.callFrame;
  const { file: place, line } = placeOf(node.callFrame);
  const short = place.replace(/^.*node_modules\//, '');
  const key = `${functionName || '(anonymous)'} ${short}:${line}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
  const pkg = place.includes('node_modules/') ? (/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(place)?.[1] ?? 'node_modules') : url.startsWith('node:') ? 'node core' : url ? place.split('/').slice(0, 2).join('/') : functionName || '(vm)';
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.hitCount);
}
const show = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${((100 * hits) / total).toFixed(1).padStart(6)}%  ${key}`);
};
show('self time by package', byPackage);
show('self time by function', byFunction);
