import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** valgrind's arguments for a server whose instructions are counted: collection off until `count` turns it on. */
export function callgrindArgs(dir: string, name: string): string[] {
  return ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${path.join(dir, `${name}.%p`)}`];
}

/**
 * V8's garbage collector, by the names of its C++ functions. One mark-compact more or less in
 * the counted window moves an api's total by ~10 %, so the rest (the program's own work and
 * the engine running it) is reported beside it: that part repeats to ~2 %.
 */
const GARBAGE_COLLECTOR = /Scaveng|Marking|MarkCompact|Sweep|Evacuat|RememberedSet|heap::base|IteratePointers|BodyDescriptor|FreeList|MemoryChunk|ActiveSystemPages|SlotSet|SizeFromMap|PretenuringHandler|GCTracer|StringTableCleaner|Worklist|EvacuationAllocator/;

/**
 * V8's optimizing compiler (TurboFan) on its background thread, counted inclusively from its
 * task. Under valgrind a process runs ~50 × slower and V8 is still optimizing after the bench's
 * warm-up: in six counted windows of 10,000 checkouts the compiler was 11–24 % of the count and
 * moved it by 10 % between two runs of the same code, while at full speed it optimizes a few
 * functions a second once warm (`--trace-opt`, 2026-12-01). Reported apart, like the collector.
 */
const OPTIMIZING_COMPILER = 'OptimizingCompileDispatcher::CompileTask::RunInternal()';

export interface InstructionCount {
  total: number;
  garbageCollector: number;
  optimizingCompiler: number;
}

const annotated = async (file: string, inclusive: boolean) =>
  (await run('callgrind_annotate', [`--inclusive=${inclusive ? 'yes' : 'no'}`, '--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 })).stdout
    .split('\n')
    .flatMap((line) => {
      const match = /^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$/.exec(line);
      return match && !match[2]!.includes('PROGRAM TOTALS') ? [{ instructions: Number(match[1]!.replaceAll(',', '')), fn: match[2]! }] : [];
    });

/** Sums a callgrind dump's instructions by function, the collector's and the compiler's apart (callgrind_annotate reads the format). */
async function readDump(file: string): Promise<InstructionCount> {
  const count = { total: 0, garbageCollector: 0, optimizingCompiler: 0 };
  for (const { instructions, fn } of await annotated(file, false)) {
    count.total += instructions;
    if (GARBAGE_COLLECTOR.test(fn)) count.garbageCollector += instructions;
  }
  count.optimizingCompiler = (await annotated(file, true)).find(({ fn }) => fn.includes(OPTIMIZING_COMPILER))?.instructions ?? 0;
  return count;
}

/**
 * Counts the instructions a process running under callgrind executes in user space while
 * `work` runs, and those of `alongside` (another process under callgrind: Redis) in the same
 * window. Unlike req/s and CPU time on a shared VM, the count barely moves from run to run,
 * so a change worth a few percent of a checkout shows. Kernel time (the socket system calls)
 * is not in it.
 */
export async function countInstructions<T>(
  pid: number,
  dir: string,
  work: () => Promise<T>,
  alongside?: number,
): Promise<{ result: T; counted: InstructionCount; countedAlongside: InstructionCount | undefined }> {
  const pids = alongside === undefined ? [pid] : [pid, alongside];
  const control = (flag: string) => Promise.all(pids.map((each) => run('callgrind_control', [flag, String(each)])));
  await control('--instr=on');
  await control('--zero');
  const result = await work();
  await control('--dump');
  await control('--instr=off');
  return {
    result,
    counted: await readDump(newestDump(dir, pid)),
    countedAlongside: alongside === undefined ? undefined : await readDump(newestDump(dir, alongside)),
  };
}

/** A process's latest callgrind dump: each is <name>.<pid>.<n>. */
function newestDump(dir: string, pid: number): string {
  const dumpNumber = (file: string) => Number(new RegExp(`\\.${pid}\\.(\\d+)$`).exec(file)?.[1] ?? -1);
  const newest = readdirSync(dir).filter((file) => dumpNumber(file) >= 0).sort((a, b) => dumpNumber(a) - dumpNumber(b)).pop();
  if (!newest) throw new Error(`no callgrind dump for ${pid} in ${dir}`);
  return path.join(dir, newest);
}
