import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Each file's duration in a full run on a 2-core box, in seconds, by `project:path` (npm run test:durations writes it). */
export const RECORDED_DURATIONS = 'vitest.durations.json';

/**
 * Files start longest first, so the forks finish together: by this checkout's last run, or
 * on a fresh clone (CI) by the durations recorded in vitest.durations.json. Ordered by the
 * longest timeout a file declares instead, the sales that wait out real payment deadlines and
 * timers started late and ran side by side at the end: a fresh-clone run took 533 s against
 * 469 s in this order (2026-12-05). A file neither knows (new since the recording) starts first,
 * as vitest starts a file it has no duration of.
 */
export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const { root } = this.ctx.config;
    const recordedFile = path.join(root, RECORDED_DURATIONS);
    const recorded: Record<string, number> = existsSync(recordedFile) ? JSON.parse(readFileSync(recordedFile, 'utf8')) : {};
    const expectedMs = (file: TestSpecification) => {
      const key = `${file.project.name}:${path.relative(root, file.moduleId)}`;
      return this.ctx.cache.getFileTestResults(key)?.duration ?? (key in recorded ? recorded[key]! * 1000 : Number.POSITIVE_INFINITY);
    };
    const expected = new Map(files.map((file) => [file, expectedMs(file)]));
    // one project's files after the other's, as vitest orders them: a process serves the files of one project
    // only, and a switch starts a new one that loads the apps again (interleaved, ~40 s more of a run)
    const project = (file: TestSpecification) => file.project.name;
    return sorted.sort((a, b) => (project(a) === project(b) ? expected.get(b)! - expected.get(a)! : project(a) < project(b) ? -1 : 1));
  }
}
