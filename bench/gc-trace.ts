// node bench/gc-trace.ts [server...]   (default: bare bare-hop ours-maxage)
// Why the main thread's heap grows under load: each benchmark server runs
// under `node --trace-gc-nvp` through 5 s of the W load (64 connections,
// 1,000 sessions), and its main isolate's scavenges are summed up — how many,
// what survived each one (copied or promoted), and how V8 resized the new
// space. V8 grows the new space as bytes keep surviving scavenges, and a
// grown new space stays resident. The main thread only (the trace's thread 0).
import { join } from 'node:path';
import type { LoadResult } from './loader.ts';
import { BENCH_DIR, buildPackage, runLoader, scratch, startServer } from './lib.ts';

const SCRIPTS: Record<string, { script: string; env?: NodeJS.ProcessEnv }> = {
  'bare': { script: 'bare.mjs' },
  'bare-hop': { script: 'bare-hop.mjs' },
  'ours': { script: 'ours.mjs' },
  'ours-maxage': { script: 'ours.mjs', env: { COOKIE_MAX_AGE: '86400' } },
};

const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['bare', 'bare-hop', 'ours-maxage'];
for (const name of names) if (!SCRIPTS[name]) throw new Error(`unknown server "${name}" (one of ${Object.keys(SCRIPTS).join(', ')})`);

buildPackage((line) => process.stderr.write(`${line}\n`));
const temp = scratch('bench-gc-trace-');
const average = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
try {
  console.log('| server | scavenges in 5 s of W | survived per scavenge KB | promoted per scavenge KB | semi-space capacity KB (the new space holds two) |');
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const name of names) {
    const { script, env } = SCRIPTS[name];
    const server = await startServer(name, process.execPath, join(BENCH_DIR, 'servers', script), { ...env, DATABASE: join(temp.dir, `${name}.db`) }, ['--trace-gc-nvp']);
    const output: string[] = [];
    let scavenges: RegExpMatchArray[] = [];
    try {
      server.process.stdout!.on('data', (chunk) => output.push(String(chunk)));
      const cookies = name.startsWith('bare') ? ['none=1'] : await runLoader<string[]>({ create: 1000, url: server.url }, temp.dir);
      output.length = 0;
      await runLoader<LoadResult>({ url: server.url, path: '/w', cookies, connections: 64, seconds: 5 }, temp.dir);
    } finally {
      await server.stop();
    }
    // One line per collection: [pid:isolate:threadId] ... gc=s (a scavenge) ...;
    // threadId 0 is the main thread (the workers are 1, 2, ...).
    const lines = [...output.join('').matchAll(/\[\d+:0x[0-9a-f]+:(\d+)\][^\n]*? gc=s [^\n]*?promoted=(\d+) [^\n]*?new_space_survived=(\d+) [^\n]*?new_space_capacity=(\d+)/g)];
    scavenges = lines.filter((line) => line[1] === '0');
    if (scavenges.length === 0) throw new Error(`${name}: no scavenge of the main thread in the trace (${lines.length} of other threads); did V8 change --trace-gc-nvp's format?`);
    // new_space_capacity is one semi-space's: the new space reserves two.
    const capacities = scavenges.map((line) => Math.round(Number(line[4]) / 1024));
    const steps = capacities.filter((capacity, i) => i === 0 || capacity !== capacities[i - 1]);
    console.log(`| ${name} | ${scavenges.length} | ${average(scavenges.map((line) => Number(line[3]))) / 1024 | 0} | ${average(scavenges.map((line) => Number(line[2]))) / 1024 | 0} | ${steps.join(' → ') || '—'} |`);
  }
} finally {
  temp.remove();
}
