import type { SourceMap } from 'node:module';
import { posix } from 'node:path';
import { BUNDLED_APPS } from '@orders/config';

/**
 * A place in a bundle as V8 writes it in a stack frame: `file:///app/apps/api/dist/main.bundle.js:1234:56`
 * (or a plain path), wherever the bundle ran; the app and the 1-based line and column.
 */
const BUNDLE_PLACE = new RegExp(`(?:file://)?[^\\s()]*?apps/(${BUNDLED_APPS.join('|')})/dist/main\\.bundle\\.js:(\\d+):(\\d+)`, 'g');

/** The source map of an app's bundle, or undefined when there is none to read. */
export type BundleMapOf = (app: string) => SourceMap | undefined;

/** A source of the map, relative to the map's directory (apps/<app>/dist), as a path from the checkout's root. */
const fromRoot = (app: string, source: string) => posix.join('apps', app, 'dist', source);

/** One line of a stack trace with each place in a bundle written as the TypeScript (or package) file and line it was built from. */
function readableLine(line: string, mapOf: BundleMapOf): string {
  return line.replace(BUNDLE_PLACE, (place, app: string, lineNumber: string, columnNumber: string) => {
    const origin = mapOf(app)?.findOrigin(Number(lineNumber), Number(columnNumber));
    if (!origin || !('fileName' in origin)) return place;
    return `${fromRoot(app, origin.fileName)}:${origin.lineNumber}:${origin.columnNumber}`;
  });
}

/** The stacks a JSON log line carries (pino's `err.stack`, a cause's), each as the text it was. */
function stacksOf(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => (key === 'stack' && typeof inner === 'string' ? [inner] : stacksOf(inner)));
}

/**
 * A stack trace, or log lines holding one, as an operator reads them: the api and the worker run
 * as bundles (scripts/src/bundle-apps.ts), so their frames name `main.bundle.js:<line>`; each
 * such frame is written as the source file it came from. A JSON log line (the api's and the
 * worker's pino lines) is replaced by the stacks it holds, so its escaped newlines read as lines.
 * Anything else is kept as it is.
 */
export function readableStack(text: string, mapOf: BundleMapOf): string {
  return text
    .split('\n')
    .flatMap((line) => {
      if (!line.trimStart().startsWith('{')) return [line];
      let logged: unknown;
      try {
        logged = JSON.parse(line);
      } catch {
        return [line];
      }
      const stacks = stacksOf(logged);
      return stacks.length > 0 ? stacks.flatMap((stack) => stack.split('\n')) : [line];
    })
    .map((line) => readableLine(line, mapOf))
    .join('\n');
}
