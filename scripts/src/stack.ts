import { readFile } from 'node:fs/promises';
import type { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { appEntry } from '@orders/config';
import { bundledAppsIn, readBundleMap, readableStack, type BundleMapOf } from './bundle-stack.js';
import { UsageError, runCommand } from './run-command.js';

const USAGE = `usage: npm run stack [-- <file>]
Prints a stack trace of the api or the worker (a log line holding one, pasted as it is, JSON
or not) with each frame of their bundles (main.bundle.js:<line>:<column>) written as the
source file and line it was built from. Reads the file, or standard input when none is named.
Run it on the build that logged the stack: its source maps are those of this checkout's
bundles (in the image: docker compose run --rm -T migrate node scripts/dist/stack.js < trace.txt).`;

const root = fileURLToPath(new URL('../../', import.meta.url));

function stackFile(args: readonly string[]): string | undefined {
  if (args.length > 1) throw new UsageError(`one file at most, not ${args.join(' ')}`);
  return args[0];
}

async function standardInput(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Each bundle's map, read once when a frame of it is first seen (the api's is ~14 MB: the
 * services do not load it themselves, as `--enable-source-maps` would at every start).
 */
async function bundleMaps(text: string): Promise<BundleMapOf> {
  const maps = new Map<string, SourceMap | undefined>();
  for (const app of bundledAppsIn(text)) {
    try {
      maps.set(app, await readBundleMap(root, app));
    } catch (error) {
      maps.set(app, undefined);
      console.error(`${app}'s frames are left as they are: no source map could be read at ${root}${appEntry(app)}.map (${(error as Error).message}); npm run build:apps writes it`);
    }
  }
  return (app) => maps.get(app);
}

/** npm run stack [-- <file>] */
runCommand({ usage: USAGE, parse: stackFile }, async (file) => {
  const text = file === undefined ? await standardInput() : await readFile(file, 'utf8');
  console.log(readableStack(text, await bundleMaps(text)).trimEnd());
});
