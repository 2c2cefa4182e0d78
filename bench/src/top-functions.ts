/**
 * Summarises a .cpuprofile (node --cpu-prof): self time per function and per package,
 * the text version of a flame graph's widest bars. Usage: tsx bench/src/top-functions.ts <file> [n]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
const [file, count = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: top-functions <file.cpuprofile> [n]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
const total = profile.samples.length;
const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/\/work\/main\//, '');
  const key = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
  const pkg = url.includes('node_modules/') ? (/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? 'node_modules') : url.startsWith('node:') ? 'node core' : url ? short.split('/').slice(0, 2).join('/') : functionName || '(vm)';
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.hitCount);
}
const show = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${((100 * hits) / total).toFixed(1).padStart(6)}%  ${key}`);
};
show('self time by package', byPackage);
show('self time by function', byFunction);
