import { readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { join, posix } from 'node:path';
import { BUNDLED_APPS, appEntry } from '@orders/config';

/** An app's bundle wherever it ran, as a `file://` URL or a plain path: the app. */
const BUNDLE_FILE = `(?:file://)?[^\\s()]*?apps/(${BUNDLED_APPS.join('|')})/dist/main\\.bundle\\.js`;
/** A place in a bundle as V8 writes it in a stack frame (`file:///app/apps/api/dist/main.bundle.js:1234:56`): the app, the 1-based line and column. */
const BUNDLE_PLACE = new RegExp(`${BUNDLE_FILE}:(\\d+):(\\d+)`, 'g');
const BUNDLE_URL = new RegExp(`^${BUNDLE_FILE}$`);

/** The apps whose bundles a text's stack frames name, each once. */
export function bundledAppsIn(text: string): string[] {
  return [...new Set([...text.matchAll(BUNDLE_PLACE)].map((place) => place[1]!))];
}

/** The app whose bundle a script's URL or path is (a profile's call frame), or undefined for any other file. */
export function bundledAppOf(url: string): string | undefined {
  return BUNDLE_URL.exec(url)?.[1];
}

/** The source map of an app's bundle, or undefined when there is none to read. */
export type BundleMapOf = (app: string) => SourceMap | undefined;

/** The source map beside an app's bundle in the checkout at `root` (npm run build:apps writes it); throws where there is none to read. */
export async function readBundleMap(root: string, app: string): Promise<SourceMap> {
  return new SourceMap(JSON.parse(await readFile(join(root, `${appEntry(app)}.map`), 'utf8')));
}

/** Where a place in an app's bundle (1-based line and column) was built from: the source file, from the checkout's root, and its place there. */
export function sourceOf(map: SourceMap, app: string, line: number, column: number): { file: string; line: number; column: number } | undefined {
  const origin = map.findOrigin(line, column);
  if (!('fileName' in origin)) return undefined;
  // the map's sources are relative to its directory, apps/<app>/dist
  return { file: posix.join('apps', app, 'dist', origin.fileName), line: origin.lineNumber, column: origin.columnNumber };
}

/** One line of a stack trace with each place in a bundle written as the TypeScript (or package) file and line it was built from. */
function readableLine(line: string, mapOf: BundleMapOf): string {
  return line.replace(BUNDLE_PLACE, (place, app: string, lineNumber: string, columnNumber: string) => {
    const map = mapOf(app);
    const source = map && sourceOf(map, app, Number(lineNumber), Number(columnNumber));
    return source ? `${source.file}:${source.line}:${source.column}` : place;
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
