import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appEntry, isBundled } from '@orders/config';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Every project `tsc -b` builds for `project`: it and, in turn, those its tsconfig references. */
function withReferences(project: string, seen = new Set<string>()): Set<string> {
  if (seen.has(project)) return seen;
  seen.add(project);
  const { references = [] } = JSON.parse(readFileSync(path.join(root, project, 'tsconfig.json'), 'utf8')) as { references?: Array<{ path: string }> };
  for (const reference of references) withReferences(path.relative(root, path.resolve(root, project, reference.path)), seen);
  return seen;
}

function newestSource(dir: string): { file: string; mtimeMs: number } {
  let newest = { file: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { mtimeMs } = statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

/** The projects whose builds were found fresh: each is looked at once per test process. */
const foundBuilt = new Set<string>();

const mtimeMs = (file: string): number => (existsSync(file) ? statSync(file).mtimeMs : 0);

/**
 * An app's bundle holds its tsc build and those of the projects it references, and the packages
 * installed: it is stale once any of those builds, or package-lock.json, is newer.
 */
function assertBundled(project: string, what: string): void {
  const app = path.basename(project);
  if (!isBundled(app) || foundBuilt.has(appEntry(app))) return;
  const bundled = mtimeMs(path.join(root, appEntry(app)));
  const inputs = [...[...withReferences(project)].map((built) => path.join(built, 'dist/.tsbuildinfo')), 'package-lock.json'];
  const newer = inputs.find((input) => mtimeMs(path.join(root, input)) > bundled);
  if (newer !== undefined) throw new Error(`${what} run from their build, and ${newer} is newer than ${appEntry(app)}: run npm run build:apps first`);
  foundBuilt.add(appEntry(app));
}

/**
 * The processes a test starts run from their build, as npm start and the images run them, after
 * `npm run build:apps` (npm test builds first): a test of a stale build would pass or fail for code
 * that is no longer there, so this refuses, as tsc -b would rebuild: a project with a source newer
 * than its .tsbuildinfo, or an app's bundle older than a build it holds. `what` names them in the refusal.
 */
export function assertBuilt(projects: readonly string[], what: string): void {
  const all = new Set(projects.flatMap((project) => [...withReferences(project)]));
  for (const project of all) {
    if (foundBuilt.has(project)) continue;
    const buildInfo = path.join(root, project, 'dist/.tsbuildinfo');
    const newest = newestSource(path.join(root, project, 'src'));
    if (!existsSync(buildInfo) || newest.mtimeMs > statSync(buildInfo).mtimeMs) {
      throw new Error(`${what} run from their build, and ${path.relative(root, newest.file)} is newer than ${project}/dist: run npm run build:apps first`);
    }
    foundBuilt.add(project);
  }
  for (const project of projects) assertBundled(project, what);
}
