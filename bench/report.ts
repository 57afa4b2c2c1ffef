// The benchmark report: a markdown document and an SVG bar chart.
import { cpus } from 'node:os';
import type { OwnersResult, OwnersRow } from './owners.ts';
import type { HttpRow } from './http.ts';
import type { MailboxRow } from './mailbox.ts';
import type { MemoryResult, MemoryRow } from './memory.ts';
import type { StoreRow } from './store.ts';
import type { SweepResult } from './sweep.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, fmt, median } from './lib.ts';

export interface Results {
  date: string;
  /** The command that measured them (kept when the report is rendered again). */
  command?: string;
  /** Every benchmark ran (npm run bench with no --only, --servers or --smoke). */
  full?: boolean;
  /** Cores, CPU model and Node version of the run (a re-rendered report keeps them). */
  machine?: string;
  seconds: number;
  rounds: number;
  connections: number;
  sessions: number;
  mailbox?: MailboxRow[];
  store?: StoreRow[];
  sweep?: SweepResult;
  sweepPostgres?: SweepResult;
  /** The same backlog with lifetimes of their own (bench/sweep.ts, mixed). */
  sweepMixed?: SweepResult;
  sweepMixedPostgres?: SweepResult;
  http?: HttpRow[];
  /** ours and ours-uninstrumented alone, over many rounds (the instruments' cost). */
  instruments?: HttpRow[];
  memory?: MemoryResult;
  owners?: OwnersResult;
}

const x = (value: number) => `${fmt(value, 2)}×`;
const signed = (value: number) => `${value < 0 ? '−' : '+'}${fmt(Math.abs(value), 1)}`;

/** Cores, CPU model and Node version of this machine, as the report names them. */
export function machineDescription(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}`;
}

/** The ratio of two servers' CPU per request: the median of the per-round ratios (back to back in each round). */
function pairedCpu(rows: HttpRow[] | undefined, a: string, b: string, workload: 'R' | 'W'): number | undefined {
  const ra = rows?.find((row) => row.server === a && row.workload === workload)?.rounds;
  const rb = rows?.find((row) => row.server === b && row.workload === workload)?.rounds;
  if (!ra || !rb || ra.length !== rb.length || ra.length === 0) return undefined;
  return median(ra.map((round, i) => round.cpuPerRequest / rb[i].cpuPerRequest));
}

/**
 * The performance targets (issue 28, restated against the design's floor),
 * each computed from this run and marked met or missed (a target whose
 * figure this run did not measure says so); then the earlier targets it
 * must not regress.
 */
function performanceTargets(results: Results): string[] {
  const rows: Array<[string, string, boolean | undefined]> = [];
  const floor = (workload: 'R' | 'W', limit: number) => {
    const r = pairedCpu(results.http, 'ours-maxage', 'bare-hop', workload);
    rows.push([
      `CPU per request ÷ the floor (bare-hop: node:http + the mailbox round trips), sliding cookie, ${workload} (≤ ${limit}×)`,
      r === undefined ? 'not measured' : x(r),
      r === undefined ? undefined : r <= limit,
    ]);
  };
  floor('R', 1.25);
  floor('W', 1.35);
  const memory = results.memory && !Array.isArray(results.memory) ? results.memory : undefined;
  const baseline = (server: string) => memory?.baselines.find((row) => row.server === server && !row.flags);
  const rss = (what: string, key: 'idleMiB' | 'afterWMiB', base: string, limit: number) => {
    const ours = baseline('ours-maxage');
    const other = baseline(base);
    const diff = ours && other ? ours[key] - other[key] : undefined;
    rows.push([
      `${what}, default node flags (≤ ${limit} MiB)`,
      diff === undefined ? 'not measured' : `${fmt(diff, 1)} MiB`,
      diff === undefined ? undefined : diff <= limit,
    ]);
  };
  rss('RSS after the W load, ours − the floor (bare-hop)', 'afterWMiB', 'bare-hop', 25);
  rss('RSS idle, ours − bare node:http', 'idleMiB', 'bare', 50);
  const rps = (a: string, b: string, workload: 'R' | 'W') => {
    const x1 = results.http?.find((row) => row.server === a && row.workload === workload);
    const x2 = results.http?.find((row) => row.server === b && row.workload === workload);
    return x1 && x2 ? x1.rps / x2.rps : undefined;
  };
  const faster = (label: string, a: string, b: string, workload: 'R' | 'W', least: number) => {
    const r = rps(a, b, workload);
    rows.push([
      `${label}, ${workload}, req/s (≥ ${least}×)`,
      r === undefined ? 'not measured' : x(r),
      r === undefined ? undefined : r >= least,
    ]);
  };
  faster('PostgreSQL: ours ÷ express-session + connect-pg-simple', 'ours-pg', 'express-pg-simple', 'W', 4);
  faster('PostgreSQL: ours ÷ express-session + connect-pg-simple', 'ours-pg', 'express-pg-simple', 'R', 5);
  faster('Redis: ours ÷ express-session + connect-redis', 'ours-redis', 'express-connect-redis', 'R', 2);
  faster('Redis: ours ÷ express-session + connect-redis', 'ours-redis', 'express-connect-redis', 'W', 3);
  for (const [label, a, b] of [
    ['Express + ours ÷ Express + express-session MemoryStore', 'express-ours', 'express-memory'],
    ['Fastify + ours ÷ Fastify + @fastify/session (memory)', 'fastify-ours', 'fastify-memory'],
    ['Koa + ours ÷ Koa + koa-session (in-memory store)', 'koa-ours', 'koa-session-memory'],
    ['Hono + ours ÷ Hono + hono-sessions (MemoryStore)', 'hono-ours', 'hono-sessions-memory'],
  ] as const)
    for (const w of ['R', 'W'] as const) faster(label, a, b, w, 1);
  // Earlier targets, held.
  for (const flags of [undefined, ...new Set((memory?.stored ?? []).map((row) => row.flags).filter(Boolean))]) {
    const stored = (memory?.stored ?? []).filter((row) => row.flags === flags);
    const r = stored.length >= 2 ? stored[stored.length - 1].rssMiB / stored[0].rssMiB : undefined;
    rows.push([
      `RSS with ${stored.length >= 2 ? `${fmt(stored[stored.length - 1].stored)} vs ${fmt(stored[0].stored)}` : 'many vs few'} stored sessions, ${flags ? `\`${flags}\`` : 'default node flags'} (within 10 %)`,
      r === undefined ? 'not measured' : x(r),
      r === undefined ? undefined : Math.abs(r - 1) <= 0.1,
    ]);
  }
  for (const [sweep, engine] of sweeps(results)) {
    rows.push([
      `p99 of store calls during a sweep ÷ without, ${engine} (≤ 2×)`,
      sweep ? x(sweep.ratioP99) : 'not measured',
      sweep ? sweep.ratioP99 <= 2 : undefined,
    ]);
  }
  const lines = [
    '## Targets in this run',
    '',
    "The performance targets as the last performance issue restated them (the CPU ones against the design's own floor, `bare-hop`), then the earlier ones held. Each figure is computed below in its section (CPU: the median of the per-round ratios; req/s: the ratio of the medians); a target this run did not measure says so.",
    '',
    '| target | this run | |',
    '| --- | ---: | --- |',
  ];
  for (const [target, figure, met] of rows)
    lines.push(`| ${target} | ${figure} | ${met === undefined ? '—' : met ? 'met' : '**missed**'} |`);
  lines.push('');
  return lines;
}

/** The sweep rows of a run, each with its label. */
function sweeps(results: Results): Array<[SweepResult | undefined, string]> {
  const rows: Array<[SweepResult | undefined, string]> = [
    [results.sweep, 'SQLite'],
    [results.sweepPostgres, 'PostgreSQL'],
  ];
  if (results.sweepMixed || results.sweepMixedPostgres)
    rows.push([results.sweepMixed, 'SQLite, mixed lifetimes'], [results.sweepMixedPostgres, 'PostgreSQL, mixed lifetimes']);
  return rows;
}

export function markdown(results: Results, command: string): string {
  const lines: string[] = [];
  lines.push('# Benchmarks', '');
  lines.push(`Measured ${results.date} on ${results.machine ?? machineDescription()}, with \`${command}\`.`);
  lines.push(
    'Every figure below comes from one run; ratios compare figures measured in that same run. The machine is shared and has 2 cores, which the loader shares with the servers: read ratios and CPU time per request, not absolute req/s.',
    '',
  );
  lines.push(...performanceTargets(results));
  if (results.http) {
    lines.push('## HTTP: sessions in front of a trivial handler', '');
    lines.push(
      `Each server in its own process, the loader (undici Pool, keep-alive, ${results.connections} connections) in another; ${results.sessions} sessions created first and their cookies spread over the requests. **R** reads the session's counter, **W** reads, increments and saves it. ${results.rounds} rounds × ${results.seconds} s after a warm-up, servers interleaved round by round; medians over rounds. *× bare* is the median of the per-round ratios to bare \`node:http\` (no sessions). *CPU/req* is the server process's CPU time (all its threads) divided by the requests it served: the steadier figure on a shared machine.`,
      '',
    );
    lines.push(
      '| server | workload | req/s | × bare | p50 ms | p99 ms | CPU/req µs | errors |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const row of results.http) {
      lines.push(
        `| ${row.label} | ${row.workload} | ${fmt(row.rps)} | ${x(row.ratio)} | ${fmt(row.p50, 2)} | ${fmt(row.p99, 2)} | ${fmt(row.cpuPerRequest, 1)} | ${row.errors + row.non2xx} |`,
      );
    }
    const notes = [...new Set(results.http.filter((row) => row.note).map((row) => `- ${row.label}: ${row.note}.`))];
    if (notes.length) lines.push('', ...notes);
    const find = (server: string, workload: 'R' | 'W') => results.http!.find((row) => row.server === server && row.workload === workload);
    lines.push(
      '',
      '### Against the targets',
      '',
      'CPU comparisons are the median of the per-round ratios (the two servers measured back to back in each round); the µs figures beside them are the medians of each.',
      '',
      '| target | R | W |',
      '| --- | ---: | ---: |',
    );
    const ours = (w: 'R' | 'W') => find('ours', w);
    const vs = (other: (w: 'R' | 'W') => HttpRow | undefined, w: 'R' | 'W') => {
      const a = ours(w);
      const b = other(w);
      return a && b ? x(a.rps / b.rps) : 'n/a';
    };
    const bestSqlite = (w: 'R' | 'W') =>
      [find('express-better-sqlite3', w), find('express-connect-sqlite3', w)].filter(Boolean).sort((a, b) => b!.rps - a!.rps)[0];
    lines.push(
      `| × bare node:http (targets ≥ 0.85 R, ≥ 0.65 W) | ${ours('R') ? x(ours('R')!.ratio) : 'n/a'} | ${ours('W') ? x(ours('W')!.ratio) : 'n/a'} |`,
    );
    lines.push(`| × the faster express-session + SQLite store (target ≥ 5) | ${vs(bestSqlite, 'R')} | ${vs(bestSqlite, 'W')} |`);
    lines.push(
      `| × @fastify/session, memory store (target ≥ 2) | ${vs((w) => find('fastify-memory', w), 'R')} | ${vs((w) => find('fastify-memory', w), 'W')} |`,
    );
    lines.push(
      `| × express-session + MemoryStore | ${vs((w) => find('express-memory', w), 'R')} | ${vs((w) => find('express-memory', w), 'W')} |`,
    );
    const cpu = (server: string, w: 'R' | 'W') => find(server, w)?.cpuPerRequest;
    // CPU comparisons: the median of the per-round ratios (the two servers
    // measured back to back in each round), steadier than a ratio of medians
    // on a shared machine.
    const paired = (a: string, b: string, w: 'R' | 'W') => pairedCpu(results.http, a, b, w);
    const versus = (a: string, b: string, w: 'R' | 'W', arrow = false) => {
      const ca = cpu(a, w);
      const cb = cpu(b, w);
      const r = paired(a, b, w);
      if (ca === undefined || cb === undefined || r === undefined) return 'n/a';
      return arrow
        ? `${fmt(cb, 1)} → ${fmt(ca, 1)} µs: ${signed(100 * (r - 1))} %`
        : `${fmt(ca, 1)} vs ${fmt(cb, 1)} µs: ${signed(100 * (r - 1))} %`;
    };
    lines.push(
      `| CPU/req with cookie.maxAge set vs a session cookie (target within 10 %) | ${versus('ours-maxage', 'ours', 'R')} | ${versus('ours-maxage', 'ours', 'W')} |`,
    );
    // The CPU ratio of two servers, with the two medians beside it.
    const ratioOf = (a: string, b: string, w: 'R' | 'W') => {
      const ca = cpu(a, w);
      const cb = cpu(b, w);
      const r = paired(a, b, w);
      return ca !== undefined && cb !== undefined && r !== undefined ? `${fmt(ca, 1)} vs ${fmt(cb, 1)} µs: ${x(r)}` : 'n/a';
    };
    lines.push(
      `| CPU/req ÷ bare node:http, sliding cookie (targets ≤ 1.3× R, ≤ 1.8× W) | ${ratioOf('ours-maxage', 'bare', 'R')} | ${ratioOf('ours-maxage', 'bare', 'W')} |`,
    );
    // The design's floor: what the hops to the store actor's thread cost on
    // their own, and what the session work costs above them.
    if (find('bare-hop', 'R')) {
      lines.push(
        `| CPU/req ÷ bare node:http of the hops alone (bare + the mailbox round trips to an echo thread: R one, W two) | ${ratioOf('bare-hop', 'bare', 'R')} | ${ratioOf('bare-hop', 'bare', 'W')} |`,
      );
      lines.push(
        `| CPU/req, sliding cookie ÷ the hops alone (the session work: cookie, Session, commit, SQLite) | ${ratioOf('ours-maxage', 'bare-hop', 'R')} | ${ratioOf('ours-maxage', 'bare-hop', 'W')} |`,
      );
    }
    if (find('bare-sqlite', 'R')) {
      lines.push(
        `| CPU/req ÷ bare node:http of the SQLite work on the main thread, no hop (not this design: R one autocommit read, W a read and a write, one transaction per request) | ${ratioOf('bare-sqlite', 'bare', 'R')} | ${ratioOf('bare-sqlite', 'bare', 'W')} |`,
      );
    }
    lines.push(
      `| CPU/req with the small-heap node flags vs default (sliding cookie; see Server memory) | ${versus('ours-maxage-small-heap', 'ours-maxage', 'R')} | ${versus('ours-maxage-small-heap', 'ours-maxage', 'W')} |`,
    );
    const before = results.http.find((row) => row.server === 'ours-maxage-before');
    if (before) {
      lines.push(
        `| CPU/req, sliding cookie: ${before.label.replace('supervised-sessions at ', '').replace(', cookie.maxAge set', '')} → this build | ${versus('ours-maxage', 'ours-maxage-before', 'R', true)} | ${versus('ours-maxage', 'ours-maxage-before', 'W', true)} |`,
      );
    }
    lines.push(
      `| CPU/req with the instruments on vs off (app.metrics()' counting; target within 2 %), in the rounds above | ${versus('ours', 'ours-uninstrumented', 'R')} | ${versus('ours', 'ours-uninstrumented', 'W')} |`,
    );
    if (results.instruments) {
      const rows = results.instruments;
      const pick = (server: string, w: 'R' | 'W') => rows.find((row) => row.server === server && row.workload === w);
      const pairedOnOff = (w: 'R' | 'W') => {
        const a = pick('ours', w);
        const b = pick('ours-uninstrumented', w);
        if (!a || !b || a.rounds.length !== b.rounds.length) return 'n/a';
        const r = median(a.rounds.map((round, i) => round.cpuPerRequest / b.rounds[i].cpuPerRequest));
        return `${fmt(a.cpuPerRequest, 1)} vs ${fmt(b.cpuPerRequest, 1)} µs: ${signed(100 * (r - 1))} %`;
      };
      const n = rows[0]?.rounds.length ?? 0;
      lines.push(`| the same, the two servers alone over ${n} rounds (target within 2 %) | ${pairedOnOff('R')} | ${pairedOnOff('W')} |`);
    }
    const on = (a: string, b: string) => (w: 'R' | 'W') => {
      const x1 = find(a, w);
      const x2 = find(b, w);
      return x1 && x2 ? x(x1.rps / x2.rps) : 'n/a';
    };
    const expressVsMemory = on('express-ours', 'express-memory');
    const fastifyVsMemory = on('fastify-ours', 'fastify-memory');
    const expressVsSqlite = (w: 'R' | 'W') => {
      const ours = find('express-ours', w);
      const best = bestSqlite(w);
      return ours && best ? x(ours.rps / best.rps) : 'n/a';
    };
    lines.push(
      `| Express + ours × Express + express-session MemoryStore (target ≥ 1) | ${expressVsMemory('R')} | ${expressVsMemory('W')} |`,
    );
    lines.push(
      `| Express + ours × Express + the faster express-session SQLite store (target ≥ 3) | ${expressVsSqlite('R')} | ${expressVsSqlite('W')} |`,
    );
    lines.push(`| Fastify + ours × Fastify + @fastify/session, memory (target ≥ 1) | ${fastifyVsMemory('R')} | ${fastifyVsMemory('W')} |`);
    const koaVsMemory = on('koa-ours', 'koa-session-memory');
    const honoVsMemory = on('hono-ours', 'hono-sessions-memory');
    lines.push(`| Koa + ours × Koa + koa-session, in-memory external store (target ≥ 1) | ${koaVsMemory('R')} | ${koaVsMemory('W')} |`);
    lines.push(`| Hono + ours × Hono + hono-sessions, MemoryStore (target ≥ 1) | ${honoVsMemory('R')} | ${honoVsMemory('W')} |`);
    // A target that would put the project above the ceiling is said to be one.
    const sqliteR = bestSqlite('R');
    const sqliteW = bestSqlite('W');
    if (sqliteR && sqliteW && (5 * sqliteR.ratio > 1 || 5 * sqliteW.ratio > 1)) {
      lines.push(
        '',
        `The faster express-session + SQLite stack reached ${x(sqliteR.ratio)} (R) and ${x(sqliteW.ratio)} (W) of bare \`node:http\` in this run: five times that is ${x(5 * sqliteR.ratio)} / ${x(5 * sqliteW.ratio)} bare; above 1× that target cannot be met on this machine as measured.`,
      );
    }
    const fastify = (w: 'R' | 'W') => find('fastify-memory', w);
    if (fastify('R') && fastify('W')) {
      const [r, w] = [fastify('R')!.ratio, fastify('W')!.ratio];
      if (2 * r > 1 || 2 * w > 1) {
        lines.push(
          '',
          `@fastify/session reached ${x(r)} (R) and ${x(w)} (W) of bare \`node:http\` in this run: twice that is ${x(2 * r)} / ${x(2 * w)} bare, faster than a server that does no session work at all, so that target cannot be met on this machine as measured.`,
        );
      }
    }
    const split = results.http.filter((row) => row.threads);
    if (split.length) {
      lines.push(
        '',
        "### Where the server's CPU goes",
        '',
        "CPU µs per request of each server process's threads (Linux `/proc/<pid>/task`, medians over rounds): the main thread; `worker_threads` (here: the store actor and the cleaner); V8's platform threads (concurrent garbage collection, compilation); the rest (libuv's pool...). *kernel* is the part of the total spent in system calls (socket and file writes, thread wake-ups).",
        '',
      );
      lines.push(
        '| server | workload | main thread | worker threads | V8 threads | other | kernel |',
        '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
      );
      for (const row of split) {
        const t = row.threads!;
        lines.push(
          `| ${row.label} | ${row.workload} | ${fmt(t.main, 1)} | ${fmt(t.workers, 1)} | ${fmt(t.v8, 1)} | ${fmt(t.other, 1)} | ${fmt(t.system, 1)} |`,
        );
      }
      const extra = (w: 'R' | 'W') => {
        const a = ours(w)?.threads;
        const b = find('bare', w)?.threads;
        return a && b
          ? `${w}: ${signed(a.main - b.main)} µs on the main thread, ${fmt(a.workers, 1)} µs in the store actor and cleaner, ${signed(a.v8 - b.v8)} µs in V8's threads`
          : null;
      };
      const parts = [extra('R'), extra('W')].filter(Boolean);
      if (parts.length) lines.push('', `What supervised-sessions adds to bare \`node:http\` per request — ${parts.join('; ')}.`);
    }
    lines.push('', 'Chart: [benchmarks.svg](benchmarks.svg)', '');
  }
  if (results.mailbox) {
    lines.push(
      '## Mailbox (runtime)',
      '',
      "Echo round trips to a worker thread. *CPU µs/call*: the benchmark process's CPU time (both threads) per round trip, for the two bare hops.",
      '',
    );
    lines.push(
      '| | calls | calls/s | × raw ping-pong | p50 ms | p99 ms | CPU µs/call |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const row of results.mailbox)
      lines.push(
        `| ${row.name} | ${fmt(row.calls)} | ${fmt(row.perSecond)} | ${x(row.ratio)} | ${fmt(row.p50, 3)} | ${fmt(row.p99, 3)} | ${row.cpuPerCall === undefined ? '' : fmt(row.cpuPerCall, 1)} |`,
      );
    lines.push('');
  }
  if (results.store) {
    lines.push(
      '## Store: `app.store` vs `node:sqlite` on the main thread',
      '',
      'Same schema, statements and pragmas (WAL, synchronous=NORMAL); the direct baseline runs one autocommit transaction per operation (a synchronous API has no concurrency: one figure for both rows). Through the store, the calls of one event-loop turn share one transaction (group commit).',
      '',
    );
    lines.push('| op | concurrency | app.store ops/s | direct ops/s | ratio |', '| --- | ---: | ---: | ---: | ---: |');
    for (const row of results.store)
      lines.push(`| ${row.op} | ${row.concurrency} | ${fmt(row.store)} | ${fmt(row.direct)} | ${x(row.ratio)} |`);
    lines.push('');
  }
  for (const [s, engine] of sweeps(results)) {
    if (!s) continue;
    const mix = s.mixed
      ? ' Half of each with a lifetime of its own: of the dead, 5-minute sessions last used 3 days ago beside sessions on the app\'s maxAge (1 day); of the live, "remember me" sessions (30 days) last used 3 days ago beside sessions used now.'
      : '';
    lines.push(
      `## Sweep of a backlog (${engine})`,
      '',
      `${fmt(s.dead)} dead sessions beside ${fmt(s.live)} live ones; 16 concurrent get/patch loops through \`app.store\` with no sweep, then during the sweep.${mix}`,
      '',
    );
    lines.push('| | value |', '| --- | ---: |');
    lines.push(`| deleted | ${fmt(s.deleted)} |`, `| sweep duration | ${fmt(s.seconds, 1)} s |`, `| rows/s | ${fmt(s.rowsPerSecond)} |`);
    lines.push(`| store calls without a sweep: p50 / p99 | ${fmt(s.without.p50, 3)} / ${fmt(s.without.p99, 3)} ms |`);
    lines.push(`| store calls during the sweep: p50 / p99 | ${fmt(s.during.p50, 3)} / ${fmt(s.during.p99, 3)} ms |`);
    lines.push(`| p99 during ÷ p99 without (target ≤ 2) | ${x(s.ratioP99)} |`);
    if (s.bytesPerRow !== undefined)
      lines.push(`| table size on the server per stored row (indexes included; data \`{"planted":true}\`) | ${fmt(s.bytesPerRow)} bytes |`);
    lines.push('');
  }
  const pgRows = results.http?.filter((row) => row.xactPerRequest !== undefined) ?? [];
  if (pgRows.length) {
    const find = (server: string, workload: 'R' | 'W') => results.http!.find((row) => row.server === server && row.workload === workload);
    lines.push(
      "## PostgreSQL: a fleet's store",
      '',
      `The rows above on PostgreSQL: each server on a database of its own on one PostgreSQL server (test/postgres-server.ts: loopback, fsync off, the same 2 cores). connect-pg-simple is configured as its README recommends (a pg Pool, the table created if missing). *xact/req*: transactions committed in that database during the measurement (\`pg_stat_database.xact_commit\`) per request served: group commit made visible.`,
      '',
    );
    lines.push("*DB CPU/req*: the PostgreSQL server's CPU time (all its processes) per request served.", '');
    lines.push(
      '| server | workload | req/s | p99 ms | app CPU/req µs | DB CPU/req µs | xact/req |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const row of pgRows)
      lines.push(
        `| ${row.label} | ${row.workload} | ${fmt(row.rps)} | ${fmt(row.p99, 2)} | ${fmt(row.cpuPerRequest, 1)} | ${fmt(row.dbCpuPerRequest ?? NaN, 1)} | ${fmt(row.xactPerRequest!, 3)} |`,
      );
    const ratio = (w: 'R' | 'W') => {
      const a = find('ours-pg', w);
      const b = find('express-pg-simple', w);
      return a && b ? x(a.rps / b.rps) : 'n/a';
    };
    lines.push('', '| target | R | W |', '| --- | ---: | ---: |');
    lines.push(`| ours × express-session + connect-pg-simple (targets ≥ 5 R, ≥ 4 W) | ${ratio('R')} | ${ratio('W')} |`);
    lines.push(
      `| our transactions per request (target well below 1) | ${fmt(find('ours-pg', 'R')?.xactPerRequest ?? NaN, 3)} | ${fmt(find('ours-pg', 'W')?.xactPerRequest ?? NaN, 3)} |`,
    );
    const earlier = (w: 'R' | 'W') => {
      const a = find('ours-pg', w);
      const b = find('ours-pg-before', w);
      return a && b
        ? `app ${fmt(b.cpuPerRequest, 1)} → ${fmt(a.cpuPerRequest, 1)} µs, DB ${fmt(b.dbCpuPerRequest ?? NaN, 1)} → ${fmt(a.dbCpuPerRequest ?? NaN, 1)} µs`
        : 'n/a';
    };
    const pgBefore = find('ours-pg-before', 'R');
    if (pgBefore)
      lines.push(
        `| CPU/req on PostgreSQL, ${pgBefore.label.replace('supervised-sessions at ', '').replace(' on PostgreSQL', '')} → this build | ${earlier('R')} | ${earlier('W')} |`,
      );
    lines.push('');
  }
  const redisRows = results.http?.filter((row) => row.commandsPerRequest !== undefined) ?? [];
  if (redisRows.length) {
    const find = (server: string, workload: 'R' | 'W') => results.http!.find((row) => row.server === server && row.workload === workload);
    lines.push(
      '## Redis',
      '',
      "The rows above on Redis: both servers on one redis-server (test/redis-server.ts: loopback, AOF with `appendfsync always`, the same 2 cores), each under its own key prefix; *on a Redis Cluster*: ours on six redis-server processes (three primaries, three replicas, the same settings, the same 2 cores), its Redis CPU that of all six, its commands those of the three primaries. connect-redis is configured as its README recommends (a connected node-redis client handed in). *Redis CPU/req*: the Redis server's CPU time per request served; *total*: the app's and Redis's together. *sent/req*: commands the app sent Redis per request served — the figure pipelining and batching lower (ours: one EVALSHA per mailbox batch); *cmd/req*: every command Redis ran per request, a script's own calls included (`INFO commandstats`; both include the measurement's own few). *bytes/session*: `MEMORY USAGE` of one session's key (mean of a sample; ours is a hash with a field per data key).",
      '',
    );
    lines.push(
      '| server | workload | req/s | p99 ms | app CPU/req µs | Redis CPU/req µs | total CPU/req µs | sent/req | cmd/req | bytes/session |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const row of redisRows)
      lines.push(
        `| ${row.label} | ${row.workload} | ${fmt(row.rps)} | ${fmt(row.p99, 2)} | ${fmt(row.cpuPerRequest, 1)} | ${fmt(row.dbCpuPerRequest ?? NaN, 1)} | ${fmt(row.cpuPerRequest + (row.dbCpuPerRequest ?? NaN), 1)} | ${fmt(row.sentPerRequest ?? NaN, 3)} | ${fmt(row.commandsPerRequest!, 3)} | ${fmt(row.bytesPerSession ?? NaN)} |`,
      );
    const ratio = (w: 'R' | 'W') => {
      const a = find('ours-redis', w);
      const b = find('express-connect-redis', w);
      return a && b ? x(a.rps / b.rps) : 'n/a';
    };
    const cpu = (w: 'R' | 'W') => {
      const a = find('ours-redis', w);
      const b = find('express-connect-redis', w);
      return a && b ? x((a.cpuPerRequest + (a.dbCpuPerRequest ?? NaN)) / (b.cpuPerRequest + (b.dbCpuPerRequest ?? NaN))) : 'n/a';
    };
    lines.push('', '| target | R | W |', '| --- | ---: | ---: |');
    lines.push(`| ours × express-session + connect-redis, req/s (targets ≥ 2 R, ≥ 3 W) | ${ratio('R')} | ${ratio('W')} |`);
    lines.push(`| our total CPU/req ÷ theirs, app + Redis (target < 1) | ${cpu('R')} | ${cpu('W')} |`);
    lines.push(
      `| commands our app sends per request (target well below 1) | ${fmt(find('ours-redis', 'R')?.sentPerRequest ?? NaN, 3)} | ${fmt(find('ours-redis', 'W')?.sentPerRequest ?? NaN, 3)} |`,
    );
    const onCluster = (w: 'R' | 'W') => {
      const a = find('ours-redis-cluster', w);
      const b = find('ours-redis', w);
      return a && b ? x(a.rps / b.rps) : 'n/a';
    };
    lines.push(`| ours on a Redis Cluster ÷ ours on one Redis, req/s (same cores) | ${onCluster('R')} | ${onCluster('W')} |`);
    lines.push('');
  }
  if (results.owners) {
    // A run saved before engines and logins were measured holds one SQLite row.
    const rows: OwnersRow[] = Array.isArray(results.owners)
      ? results.owners
      : [{ ...results.owners, build: 'ours', engine: 'sqlite', loginMs: NaN }];
    const o = rows[0];
    lines.push(
      "## Owners: one user's sessions among many",
      '',
      `${fmt(o.owned)} sessions of one user among ${fmt(o.stored)} stored, through \`app.store\` (the owner index serves both calls), then ${fmt(o.owned)} logins one after another (\`renew(sid, { owner })\`: one call); medians of ${o.rounds} rounds, builds and engines taking turns. On PostgreSQL every owner operation holds the owner's advisory lock (docs/owners.md): with \`--before\`, the rows of the earlier build show its cost.`,
      '',
    );
    lines.push('| build | engine | sessionsOf ms | revokeAll ms | login ms |', '| --- | --- | ---: | ---: | ---: |');
    for (const row of rows)
      lines.push(
        `| ${row.build} | ${row.engine === 'postgres' ? 'PostgreSQL' : 'SQLite'} | ${fmt(row.sessionsOfMs, 2)} | ${fmt(row.revokeAllMs, 2)} | ${fmt(row.loginMs, 3)} |`,
      );
    lines.push('');
  }
  if (results.memory) {
    // Results saved before the memory section had baselines held its rows alone.
    const { baselines, stored } = Array.isArray(results.memory) ? { baselines: [], stored: results.memory as MemoryRow[] } : results.memory;
    lines.push('## Server memory', '');
    if (baselines.length) {
      lines.push(
        "Resident memory (RSS) of each server process, idle (started, no connection yet) and after a 64-connection W load, in the same run; sliding cookie on. Linux cannot split a process's RSS by thread (threads share one address space): *main heap* is the main thread's V8 heap (`process.memoryUsage().heapTotal`), the rest of the difference is the store actor's and the cleaner's isolates, SQLite, code and buffers.",
        '',
      );
      lines.push(
        '| server | node flags | idle RSS MiB | idle main heap MiB | after W RSS MiB | after W main heap MiB |',
        '| --- | --- | ---: | ---: | ---: | ---: |',
      );
      for (const row of baselines)
        lines.push(
          `| ${row.label} | ${row.flags ? `\`${row.flags}\`` : 'default'} | ${fmt(row.idleMiB, 1)} | ${fmt(row.idleHeapMiB, 1)} | ${fmt(row.afterWMiB, 1)} | ${fmt(row.afterWHeapMiB, 1)} |`,
        );
      lines.push('', '| target | default flags | with the flags above |', '| --- | ---: | ---: |');
      const diff = (flags: boolean, key: 'idleMiB' | 'afterWMiB') => {
        const bare = baselines.find((row) => row.server === 'bare' && !!row.flags === flags);
        const ours = baselines.find((row) => row.server === 'ours-maxage' && !!row.flags === flags);
        return bare && ours ? `${fmt(ours[key] - bare[key], 1)} MiB` : 'n/a';
      };
      lines.push(`| idle: ours − bare (target ≤ 50 MiB) | ${diff(false, 'idleMiB')} | ${diff(true, 'idleMiB')} |`);
      lines.push(`| after W: ours − bare | ${diff(false, 'afterWMiB')} | ${diff(true, 'afterWMiB')} |`);
      const hop = baselines.find((row) => row.server === 'bare-hop' && !row.flags);
      const ours = baselines.find((row) => row.server === 'ours-maxage' && !row.flags);
      if (hop && ours)
        lines.push(`| after W: ours − the floor, bare-hop (target ≤ 25 MiB) | ${fmt(ours.afterWMiB - hop.afterWMiB, 1)} MiB | |`);
      lines.push('');
    }
    if (stored.length) {
      lines.push('Resident memory of the supervised-sessions server process after a W load, with this many sessions stored.', '');
      lines.push('| stored sessions | node flags | RSS MiB |', '| ---: | --- | ---: |');
      for (const row of stored)
        lines.push(`| ${fmt(row.stored)} | ${row.flags ? `\`${row.flags}\`` : 'default'} | ${fmt(row.rssMiB, 1)} |`);
      for (const flags of [...new Set(stored.map((row) => row.flags))]) {
        const rows = stored.filter((row) => row.flags === flags);
        if (rows.length < 2) continue;
        const [small, large] = [rows[0], rows[rows.length - 1]];
        lines.push(
          '',
          `${fmt(large.stored)} vs ${fmt(small.stored)} sessions, ${flags ? `\`${flags}\`` : 'default flags'}: ${x(large.rssMiB / small.rssMiB)} the memory (target within 10 %).`,
        );
      }
      lines.push('');
    }
  }
  // The levers of issue 16, kept by hand beside the benchmark (bench/levers.md).
  const levers = join(BENCH_DIR, 'levers.md');
  if (existsSync(levers)) lines.push('## Levers', '', readFileSync(levers, 'utf8').trim(), '');
  return lines.join('\n');
}

/** A grouped bar chart of req/s per server, R and W, as standalone SVG. */
export function svgChart(rows: HttpRow[]): string {
  const servers = [...new Map(rows.map((row) => [row.server, row.label])).entries()];
  const max = Math.max(...rows.map((row) => row.rps), 1);
  const rowHeight = 44;
  const left = 330;
  const width = 900;
  const barMax = width - left - 110;
  const top = 50;
  const height = top + servers.length * rowHeight + 40;
  const color = { R: '#3b7dd8', W: '#e0892b' } as const;
  const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">Requests per second (median of rounds; higher is better)</text>`,
  );
  parts.push(`<rect x="${left}" y="32" width="12" height="12" fill="${color.R}"/><text x="${left + 18}" y="42">R: read</text>`);
  parts.push(
    `<rect x="${left + 100}" y="32" width="12" height="12" fill="${color.W}"/><text x="${left + 118}" y="42">W: read-modify-write</text>`,
  );
  servers.forEach(([server, label], i) => {
    const y = top + i * rowHeight;
    parts.push(
      `<text x="${left - 10}" y="${y + 22}" text-anchor="end"${server === 'ours' ? ' font-weight="700"' : ''}>${esc(label)}</text>`,
    );
    (['R', 'W'] as const).forEach((workload, j) => {
      const row = rows.find((candidate) => candidate.server === server && candidate.workload === workload);
      if (!row) return;
      const w = Math.max(1, (row.rps / max) * barMax);
      const by = y + 6 + j * 17;
      parts.push(`<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="15" fill="${color[workload]}"/>`);
      parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${by + 12}" font-size="11">${fmt(row.rps)} (${fmt(row.ratio, 2)}×)</text>`);
    });
  });
  parts.push(`<text x="${left}" y="${height - 12}" font-size="11" fill="#555">(×: ratio to bare node:http in the same round)</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
