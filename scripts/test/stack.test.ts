import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { appEntry } from '@orders/config';
import { runOperatorCommand } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledAppOf, readBundleMap, readableStack, sourceOf } from '../src/bundle-stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Where a function is declared in an app's bundle, as V8 names a place in a frame: 1-based line and column. */
async function placeInBundle(app: string, declaration: string): Promise<string> {
  const lines = (await readFile(path.join(root, appEntry(app)), 'utf8')).split('\n');
  const line = lines.findIndex((text) => text.includes(declaration));
  expect(line, `${declaration} in ${app}'s bundle`).toBeGreaterThanOrEqual(0);
  return `${line + 1}:${lines[line]!.indexOf(declaration) + 1}`;
}

/** The 1-based line of a declaration in a source file. */
async function lineInSource(file: string, declaration: string): Promise<number> {
  return (await readFile(path.join(root, file), 'utf8')).split('\n').findIndex((text) => text.includes(declaration)) + 1;
}

describe('npm run stack', () => {
  let dir: string;
  let apiFrame: string;
  let workerFrame: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'stack-'));
    apiFrame = `file:///app/apps/api/dist/main.bundle.js:${await placeInBundle('api', 'function authenticate(request)')}`;
    workerFrame = `/app/apps/worker/dist/main.bundle.js:${await placeInBundle('worker', 'async function writeDeadLetter(')}`;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("writes each frame of the api's bundle as the TypeScript line it was built from, and keeps Node's own frames", async () => {
    const file = path.join(dir, 'api.txt');
    await writeFile(file, ['Error: The token is not valid', `    at authenticate (${apiFrame})`, '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)', ''].join('\n'));
    const answer = await runOperatorCommand('stack', [file], {});
    expect(answer).toMatchObject({ exitCode: 0, stderr: '' });
    const line = await lineInSource('apps/api/src/plugins/auth.ts', 'function authenticate(request: FastifyRequest)');
    expect(answer.stdout.split('\n')).toEqual([
      'Error: The token is not valid',
      expect.stringMatching(new RegExp(`^    at authenticate \\(apps/api/src/plugins/auth\\.ts:${line}:\\d+\\)$`)),
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
      '',
    ]);
  });

  it("reads a worker's JSON log line pasted from standard input, and prints the stack it holds line by line", async () => {
    const logged = JSON.stringify({ level: 50, app: 'worker', err: { type: 'Error', message: 'boom', stack: `Error: boom\n    at writeDeadLetter (${workerFrame})` }, msg: 'boom' });
    const running = promisify(execFile)(process.execPath, ['scripts/dist/stack.js'], { cwd: root });
    running.child.stdin!.end(`${logged}\n`);
    const { stdout } = await running;
    const line = await lineInSource('apps/worker/src/dead-letter-writer.ts', 'export async function writeDeadLetter(');
    expect(stdout).toMatch(new RegExp(`^Error: boom\n    at writeDeadLetter \\(apps/worker/src/dead-letter-writer\\.ts:${line}:\\d+\\)\n$`));
  });

  it("names a profile's call frame in a bundle (bench/src/top-functions.ts) by its source file and line, and no other file as a bundle", async () => {
    const url = `file://${root}apps/api/dist/main.bundle.js`;
    expect([bundledAppOf(url), bundledAppOf(`${root}apps/worker/dist/main.bundle.js`), bundledAppOf(`file://${root}apps/api/dist/main.js`), bundledAppOf('node:internal/timers')]).toEqual(['api', 'worker', undefined, undefined]);
    const [line, column] = (await placeInBundle('api', 'function authenticate(request)')).split(':').map(Number);
    expect(sourceOf(await readBundleMap(root, 'api'), 'api', line!, column!)).toMatchObject({ file: 'apps/api/src/plugins/auth.ts', line: await lineInSource('apps/api/src/plugins/auth.ts', 'function authenticate(request: FastifyRequest)') });
  });

  it('keeps a frame as it is where no map of its bundle can be read, and what is not a stack', () => {
    const text = `not json {\n{"msg":"no stack here"}\n    at x (${apiFrame})`;
    expect(readableStack(text, () => undefined)).toBe(text);
  });
});
