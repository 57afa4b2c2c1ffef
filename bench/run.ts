// npm run bench: every benchmark, then the markdown table on stdout and, on a
// full run, docs/benchmarks.md and docs/benchmarks.svg.
//   --smoke            a few seconds in all: checks that everything starts and reports
//   --only=a,b         some of: mailbox, store, sweep, owners, http, memory
//   (sweep and http include PostgreSQL rows, and http Redis rows, on servers the benchmark starts)
//   --seconds=N --rounds=N   HTTP measurement length and rounds (default 10, 3)
//   --report=FILE      measure nothing: render the results a run saved in FILE
//   --before=REV       also run the package as built at git revision REV (HTTP: sliding cookie; owners), for a before/after in one run
// Every run saves its raw results next to the system's temporary files
// (printed at the end), so the report can be rendered again without measuring.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { httpBenchmark } from './http.ts';
import { benchDatabase, buildPackage, buildRevision, ROOT, scratch, stopBenchPostgres } from './lib.ts';
import { mailboxBenchmark } from './mailbox.ts';
import { ownersBenchmark } from './owners.ts';
import { memoryBenchmark } from './memory.ts';
import { machineDescription, markdown, svgChart, type Results } from './report.ts';
import { storeBenchmark } from './store.ts';
import { sweepBenchmark } from './sweep.ts';

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, value ?? 'true'] as const;
  }),
);
const smoke = args.has('smoke');
const only = args.get('only')?.split(',');
const wants = (name: string) => !only || only.includes(name);
const log = (line: string) => process.stderr.write(`${line}\n`);

const seconds = Number(args.get('seconds') ?? (smoke ? 0.5 : 10));
const rounds = Number(args.get('rounds') ?? (smoke ? 1 : 3));
const connections = 64;
const sessions = smoke ? 100 : 1000;
const saved = args.get('report');

/** --before=REV: that revision's package, built once for every benchmark that compares. */
let before: { rev: string; dist: string } | undefined;

async function measure(): Promise<Results> {
  if (args.has('before')) before = { rev: args.get('before')!, dist: buildRevision(args.get('before')!, log) };
  const results: Results = {
    date: new Date().toISOString().slice(0, 10),
    machine: machineDescription(),
    seconds,
    rounds,
    connections,
    sessions,
  };
  const temp = scratch();
  try {
    if (wants('mailbox')) {
      log('# mailbox');
      results.mailbox = await mailboxBenchmark({ calls: smoke ? 2000 : 20000, concurrency: 64 });
    }
    if (wants('store')) {
      log('# store');
      results.store = await storeBenchmark({ dir: temp.dir, seconds: smoke ? 0.2 : 2 });
    }
    if (wants('sweep')) {
      const backlog = { dir: temp.dir, dead: smoke ? 20_000 : 1_000_000, live: smoke ? 5_000 : 100_000, baselineSeconds: smoke ? 0.5 : 5 };
      log('# sweep');
      results.sweep = await sweepBenchmark(backlog);
      log('# sweep, mixed lifetimes');
      results.sweepMixed = await sweepBenchmark({ ...backlog, mixed: true });
      log('# sweep on PostgreSQL');
      try {
        results.sweepPostgres = await sweepBenchmark({ ...backlog, postgres: await benchDatabase('bench_sweep') });
        log('# sweep on PostgreSQL, mixed lifetimes');
        results.sweepMixedPostgres = await sweepBenchmark({ ...backlog, mixed: true, postgres: await benchDatabase('bench_sweep_mixed') });
      } finally {
        stopBenchPostgres();
      }
    }
    if (wants('owners')) {
      log('# owners (SQLite and PostgreSQL)');
      try {
        results.owners = await ownersBenchmark({
          dir: temp.dir,
          stored: smoke ? 20_000 : 1_000_000,
          owned: 100,
          rounds: smoke ? 2 : 10,
          builds: [
            { label: 'ours', dist: `${pathToFileURL(join(ROOT, 'dist')).href}/` },
            ...(before ? [{ label: `before ${before.rev}`, dist: before.dist }] : []),
          ],
          postgres: (label) => benchDatabase(`bench_owners_${label.replace(/\W/g, '_').toLowerCase()}`),
        });
      } finally {
        stopBenchPostgres();
      }
    }
    if (wants('http')) {
      log('# http');
      results.http = await httpBenchmark({
        rounds,
        seconds,
        warmupSeconds: smoke ? 0.2 : 3,
        connections,
        sessions,
        dir: temp.dir,
        log,
        only: smoke ? ['bare', 'bare-hop', 'bare-sqlite', 'ours', 'ours-maxage'] : args.get('servers')?.split(','),
        before,
      });
      // The instruments' cost is a few per cent at most: the two servers
      // again, back to back over many short rounds, for a paired median.
      if (!args.has('servers')) {
        log('# http: instruments on and off');
        results.instruments = await httpBenchmark({
          rounds: smoke ? 2 : 12,
          seconds: smoke ? 0.3 : 5,
          warmupSeconds: smoke ? 0.2 : 2,
          connections,
          sessions,
          dir: temp.dir,
          log,
          only: ['ours', 'ours-uninstrumented'],
        });
      }
    }
    if (wants('memory')) {
      log('# memory');
      results.memory = await memoryBenchmark({
        dir: temp.dir,
        sizes: smoke ? [1_000, 5_000] : [10_000, 1_000_000],
        seconds: smoke ? 0.5 : 5,
        settleMs: smoke ? 300 : 2000,
      });
    }
  } finally {
    temp.remove();
  }
  return results;
}

// A full run (every benchmark) writes docs/benchmarks.md; so does rendering
// one a full run saved — never a partial run's results.
const measuredFully = !smoke && !only && !args.has('servers');
// The servers run the built package, as users do (bench/servers/*.mjs
// import dist/): built from the sources first.
if (!saved) buildPackage(log);
let results: Results;
try {
  results = saved ? (JSON.parse(readFileSync(saved, 'utf8')) as Results) : { ...(await measure()), full: measuredFully };
} finally {
  // This run's build of another revision (--before) is not kept, whatever
  // happened; another run's, still measuring, is left alone.
  if (before) rmSync(dirname(fileURLToPath(before.dist)), { recursive: true, force: true });
}
// Results saved before partial runs were kept came from full runs only.
const full = results.full ?? true;

// A re-rendered report still names the command that measured it.
const command = saved
  ? (results.command ?? 'npm run bench')
  : `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
results.command = command;
if (!saved) {
  // A partial run's results are kept too, under a name of their own.
  const file = join(tmpdir(), full ? 'supervised-sessions-bench.json' : `supervised-sessions-bench-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(results));
  log(`raw results saved in ${file} (npm run bench -- --report=${file} renders them again)`);
}
const report = markdown(results, command);
process.stdout.write(`${report}\n`);
if (full) {
  writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), `${report}\n`);
  if (results.http) writeFileSync(join(ROOT, 'docs', 'benchmarks.svg'), svgChart(results.http));
  log('wrote docs/benchmarks.md and docs/benchmarks.svg');
}
