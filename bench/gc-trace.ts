// node bench/gc-trace.ts [server...]   (default: bare bare-hop ours-maxage)
// Why the main thread's heap grows under load: each benchmark server runs
// under `node --trace-gc-nvp` through 5 s of the W load (64 connections,
// 1,000 sessions), and its main isolate's scavenges are summed up — how many,
// what survived each one (copied or promoted), and how V8 resized the new
// space. V8 grows the new space as bytes keep surviving scavenges, and a
// grown new space stays resident. The main thread only (the trace's thread 0).
import { join } from 'node:path';
import type { LoadResult } from './loader.ts';
import { serverSpecs } from './http.ts';
import { buildPackage, runLoader, scratch, startServer, sessionCookies } from './lib.ts';

const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['bare', 'bare-hop', 'ours-maxage'];
const log = (line: string) => process.stderr.write(`${line}\n`);
// The HTTP benchmark's servers, by name (the PostgreSQL ones need its database server: not here).
const specs = serverSpecs((name) => names.includes(name), log).filter((spec) => !spec.postgres);
for (const name of names)
  if (!specs.some((spec) => spec.name === name))
    throw new Error(`unknown server "${name}" (one of the HTTP benchmark's servers on SQLite)`);

buildPackage(log);
const temp = scratch('bench-gc-trace-');
const average = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
try {
  console.log(
    '| server | scavenges in 5 s of W | survived per scavenge KB | promoted per scavenge KB | semi-space capacity KB (the new space holds two) |',
  );
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const { name, node, script, env } of specs) {
    const server = await startServer(name, node, script, { ...env, DATABASE: join(temp.dir, `${name}.db`) }, ['--trace-gc-nvp']);
    const output: string[] = [];
    let scavenges: RegExpMatchArray[] = [];
    try {
      server.process.stdout!.on('data', (chunk) => output.push(String(chunk)));
      const cookies = await sessionCookies(name, server.url, temp.dir);
      output.length = 0;
      await runLoader<LoadResult>({ url: server.url, path: '/w', cookies, connections: 64, seconds: 5 }, temp.dir);
    } finally {
      await server.stop();
    }
    // One line per collection: [pid:isolate:threadId] ... gc=s (a scavenge) ...;
    // threadId 0 is the main thread (the workers are 1, 2, ...).
    const lines = [
      ...output
        .join('')
        .matchAll(
          /\[\d+:0x[0-9a-f]+:(\d+)\][^\n]*? gc=s [^\n]*?promoted=(\d+) [^\n]*?new_space_survived=(\d+) [^\n]*?new_space_capacity=(\d+)/g,
        ),
    ];
    scavenges = lines.filter((line) => line[1] === '0');
    if (scavenges.length === 0)
      throw new Error(
        `${name}: no scavenge of the main thread in the trace (${lines.length} of other threads); did V8 change --trace-gc-nvp's format?`,
      );
    // new_space_capacity is one semi-space's: the new space reserves two.
    const capacities = scavenges.map((line) => Math.round(Number(line[4]) / 1024));
    const steps = capacities.filter((capacity, i) => i === 0 || capacity !== capacities[i - 1]);
    console.log(
      `| ${name} | ${scavenges.length} | ${(average(scavenges.map((line) => Number(line[3]))) / 1024) | 0} | ${(average(scavenges.map((line) => Number(line[2]))) / 1024) | 0} | ${steps.join(' → ') || '—'} |`,
    );
  }
} finally {
  temp.remove();
}
