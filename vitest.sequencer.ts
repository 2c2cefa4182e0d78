import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The longest timeout a test file gives any of its tests or hooks (`timeout: 150_000`), 0 when it keeps the default. */
function longestDeclaredTimeout(file: string): number {
  const timeouts = [...readFileSync(file, 'utf8').matchAll(/\btimeout: ([\d_]+)/g)].map((match) => Number(match[1]!.replaceAll('_', '')));
  return Math.max(0, ...timeouts);
}

/**
 * Files start longest first, so the three forks finish together. vitest knows each file's
 * last duration only after a run on this checkout; before that (a fresh clone, as CI has) it
 * starts the largest files first, and the sales that wait out real payment deadlines and
 * killed workers, short files, started last and ran alone at the end (~20 s on a slow box).
 * Without recorded durations, a file's longest declared timeout stands for its length.
 */
export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const { root } = this.ctx.config;
    const recorded = files.every((file) => this.ctx.cache.getFileTestResults(`${file.project.name}:${path.relative(root, file.moduleId)}`));
    if (recorded) return sorted;
    const declared = new Map(files.map((file) => [file, longestDeclaredTimeout(file.moduleId)]));
    // one project's files after the other's, as vitest orders them: a process serves the files of one project
    // only, and a switch starts a new one that loads the apps again (interleaved, ~40 s more of a run);
    // Array#sort is stable: files declaring the same timeout keep vitest's order
    const project = (file: TestSpecification) => file.project.name;
    return sorted.sort((a, b) => (project(a) === project(b) ? declared.get(b)! - declared.get(a)! : project(a) < project(b) ? -1 : 1));
  }
}
