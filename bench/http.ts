// The HTTP benchmark: each server in its own process, the loader in another,
// servers interleaved round by round, medians over rounds, ratios to bare
// node:http measured in the same round.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from './loader.ts';
import {
  BENCH_DIR,
  benchDatabase,
  benchPostgresPid,
  benchRedis,
  benchRedisCluster,
  redisBytesPerKey,
  redisCommandStats,
  stopBenchRedis,
  committedTransactions,
  ensureBenchPeers,
  stopBenchPostgres,
  median,
  runLoader,
  sleep,
  startServer,
  type RunningServer,
  sessionCookies,
} from './lib.ts';
import { SMALL_HEAP_FLAGS } from './memory.ts';
import { postgresCpu, sampleThreads, splitPerRequest, type ThreadSplit } from './threads.ts';

export interface ServerSpec {
  name: string;
  label: string;
  node: string;
  script: string;
  env?: NodeJS.ProcessEnv;
  note?: string;
  /** A PostgreSQL database of its own on the benchmark's server (its name). */
  postgres?: string;
  /** On the benchmark's Redis server; the pattern of its session keys (for their memory). */
  redis?: string;
  /** On the benchmark's Redis Cluster instead of its one server. */
  redisCluster?: boolean;
  /** The commands this server sends Redis itself (the others run inside its scripts); absent: every command. */
  redisSends?: string[];
}

export interface HttpOptions {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  sessions: number;
  only?: string[];
  /** A build of another revision (buildRevision): its ours-maxage and ours-pg run beside them as `ours-maxage-before` and `ours-pg-before`. */
  before?: { rev: string; dist: string };
  dir: string;
  log(line: string): void;
}

export interface HttpRow {
  server: string;
  label: string;
  note?: string;
  workload: 'R' | 'W';
  rps: number;
  p50: number;
  p99: number;
  cpuPerRequest: number;
  ratio: number;
  errors: number;
  non2xx: number;
  /** PostgreSQL rows: committed transactions per request (pg_stat_database.xact_commit; median over rounds). */
  xactPerRequest?: number;
  /** PostgreSQL rows: the database server's CPU µs per request, all its processes (median over rounds; Linux only). */
  dbCpuPerRequest?: number;
  /** Redis rows: commands the Redis server ran per request, its scripts' own calls included (INFO commandstats; median over rounds). */
  commandsPerRequest?: number;
  /** Redis rows: commands the app sent per request (EVALSHA for ours; every command for a store without scripts). */
  sentPerRequest?: number;
  /** Redis rows: MEMORY USAGE of one stored session's key, bytes (mean of a sample, after the sessions were created). */
  bytesPerSession?: number;
  /** The server's CPU per request by thread group (medians over rounds; Linux only). */
  threads?: ThreadSplit;
  rounds: LoadResult[];
}

/** Which Node can load better-sqlite3: the project's Node 24 if the addon was built for it, else the system Node. */
function nodeForBetterSqlite3(): { node: string; note?: string } | null {
  const probe = (node: string) =>
    spawnSync(node, ['-e', "new (require('better-sqlite3'))(':memory:')"], { cwd: BENCH_DIR, stdio: 'ignore' }).status === 0;
  if (probe(process.execPath)) return { node: process.execPath };
  for (const node of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (existsSync(node) && probe(node)) {
      const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
      return {
        node,
        note: `runs on the system Node ${version}: better-sqlite3's addon is built against the system Node's headers and does not load on Node ${process.version}`,
      };
    }
  }
  return null;
}

const SQLITE_PEERS = ['express-better-sqlite3', 'express-connect-sqlite3'];

export function serverSpecs(
  wanted: (name: string) => boolean,
  log: (line: string) => void,
  before?: { rev: string; dist: string },
): ServerSpec[] {
  const servers = join(BENCH_DIR, 'servers');
  const node = process.execPath;
  const specs: ServerSpec[] = [
    { name: 'bare', label: 'bare node:http (no sessions)', node, script: join(servers, 'bare.mjs') },
    // The floor of the design: bare plus the mailbox hop alone (no session, no SQLite).
    {
      name: 'bare-hop',
      label: 'bare node:http + the mailbox round trips alone, to an echo thread (R one, W two; no sessions)',
      node,
      script: join(servers, 'bare-hop.mjs'),
    },
    // Not this library's design: the storage work on the main thread, no hop (for comparison).
    {
      name: 'bare-sqlite',
      label: 'bare node:http + the SQLite work on the main thread (no sessions, no hop, no group commit)',
      node,
      script: join(servers, 'bare-sqlite.mjs'),
    },
    { name: 'ours', label: 'supervised-sessions', node, script: join(servers, 'ours.mjs') },
    {
      name: 'ours-maxage',
      label: 'supervised-sessions, cookie.maxAge set (sliding cookie)',
      node,
      script: join(servers, 'ours.mjs'),
      env: { COOKIE_MAX_AGE: '86400' },
    },
    ...(before
      ? [
          {
            name: 'ours-maxage-before',
            label: `supervised-sessions at ${before.rev}, cookie.maxAge set`,
            node,
            script: join(servers, 'ours.mjs'),
            env: { COOKIE_MAX_AGE: '86400', SESSIONS_DIST: before.dist },
          },
        ]
      : []),
    {
      name: 'ours-maxage-small-heap',
      label: `supervised-sessions, cookie.maxAge set, node ${SMALL_HEAP_FLAGS}`,
      node,
      script: join(servers, 'ours.mjs'),
      env: { COOKIE_MAX_AGE: '86400', NODE_OPTIONS: SMALL_HEAP_FLAGS },
    },
    {
      name: 'ours-uninstrumented',
      label: 'supervised-sessions, instruments off (the same server, its counting a no-op)',
      node,
      script: join(servers, 'ours.mjs'),
      env: { INSTRUMENTS: 'off' },
    },
    {
      name: 'express-memory',
      label: 'express-session + MemoryStore',
      node,
      script: join(servers, 'express.mjs'),
      env: { STORE: 'memory' },
    },
  ];
  // Installed on first use (bench/package.json): native addons that only this benchmark needs.
  if (SQLITE_PEERS.some(wanted) && ensureBenchPeers(log)) {
    const better = nodeForBetterSqlite3();
    if (better)
      specs.push({
        name: 'express-better-sqlite3',
        label: 'express-session + better-sqlite3-session-store',
        node: better.node,
        script: join(servers, 'express.mjs'),
        env: { STORE: 'better-sqlite3' },
        note: better.note,
      });
    specs.push({
      name: 'express-connect-sqlite3',
      label: 'express-session + connect-sqlite3',
      node,
      script: join(servers, 'express.mjs'),
      env: { STORE: 'connect-sqlite3' },
    });
  }
  specs.push({ name: 'fastify-memory', label: '@fastify/session (memory store)', node, script: join(servers, 'fastify.mjs') });
  // PostgreSQL: ours and express-session + connect-pg-simple, on the same server.
  specs.push({
    name: 'ours-pg',
    label: 'supervised-sessions on PostgreSQL',
    node,
    script: join(servers, 'ours.mjs'),
    postgres: 'bench_ours',
  });
  if (before) {
    specs.push({
      name: 'ours-pg-before',
      label: `supervised-sessions at ${before.rev} on PostgreSQL`,
      node,
      script: join(servers, 'ours.mjs'),
      postgres: 'bench_ours_before',
      env: { SESSIONS_DIST: before.dist },
    });
  }
  if (wanted('express-pg-simple') && ensureBenchPeers(log)) {
    specs.push({
      name: 'express-pg-simple',
      label: 'express-session + connect-pg-simple (PostgreSQL)',
      node,
      script: join(servers, 'express.mjs'),
      env: { STORE: 'connect-pg-simple' },
      postgres: 'bench_cps',
    });
  }
  // Redis: ours and express-session + connect-redis, on the same server.
  specs.push({
    name: 'ours-redis',
    label: 'supervised-sessions on Redis',
    node,
    script: join(servers, 'ours.mjs'),
    redis: 'session:s:*',
    // The store actor's batches and the cleaner's pages; every other command runs inside the script.
    redisSends: [
      'evalsha',
      'eval',
      'scan',
      'script|load',
      // (Not SET: the script's own reply keys are SETs; the cleaner's lock, one a sweep, is left out.)
      'wait',
      'config|get',
      'hsetnx',
      'exists',
      'info',
      'client|setname',
      'client|setinfo',
    ],
  });
  if (before) {
    specs.push({
      ...specs.find((spec) => spec.name === 'ours-redis')!,
      name: 'ours-redis-before',
      label: `supervised-sessions at ${before.rev} on Redis`,
      // Its own keys, as the PostgreSQL before row has its own database.
      redis: 'session_before:s:*',
      env: { SESSIONS_DIST: before.dist, TABLE: 'session_before' },
    });
  }
  // The same on a Redis Cluster of six servers (three primaries, three replicas) on the same 2 cores.
  specs.push({
    name: 'ours-redis-cluster',
    label: 'supervised-sessions on a Redis Cluster',
    node,
    script: join(servers, 'ours.mjs'),
    redis: 'session:s:*',
    redisCluster: true,
    redisSends: specs.find((spec) => spec.name === 'ours-redis')!.redisSends,
  });
  if (wanted('express-connect-redis') && ensureBenchPeers(log)) {
    specs.push({
      name: 'express-connect-redis',
      label: 'express-session + connect-redis (Redis)',
      node,
      script: join(servers, 'express.mjs'),
      env: { STORE: 'connect-redis' },
      redis: 'sess:*',
    });
  }
  // The front doors, on their frameworks, against the same frameworks' own sessions.
  specs.push(
    { name: 'express-ours', label: 'Express + supervised-sessions/express', node, script: join(servers, 'express-ours.mjs') },
    { name: 'fastify-ours', label: 'Fastify + supervised-sessions/fastify', node, script: join(servers, 'fastify-ours.mjs') },
    ...(before
      ? [
          {
            name: 'express-ours-before',
            label: `Express + supervised-sessions/express at ${before.rev}`,
            node,
            script: join(servers, 'express-ours.mjs'),
            env: { SESSIONS_DIST: before.dist },
          },
          {
            name: 'fastify-ours-before',
            label: `Fastify + supervised-sessions/fastify at ${before.rev}`,
            node,
            script: join(servers, 'fastify-ours.mjs'),
            env: { SESSIONS_DIST: before.dist },
          },
        ]
      : []),
    { name: 'koa-ours', label: 'Koa + supervised-sessions/koa', node, script: join(servers, 'koa-ours.mjs') },
    { name: 'hono-ours', label: 'Hono + supervised-sessions/hono', node, script: join(servers, 'hono-ours.mjs') },
  );
  if ((wanted('koa-session-memory') || wanted('hono-sessions-memory')) && ensureBenchPeers(log)) {
    specs.push(
      { name: 'koa-session-memory', label: 'Koa + koa-session (in-memory external store)', node, script: join(servers, 'koa.mjs') },
      { name: 'hono-sessions-memory', label: 'Hono + hono-sessions (MemoryStore)', node, script: join(servers, 'hono.mjs') },
    );
  }
  return specs.filter((spec) => wanted(spec.name));
}

function medianSplit(splits: ThreadSplit[]): ThreadSplit {
  const of = (key: keyof ThreadSplit) => median(splits.map((split) => split[key]));
  return { main: of('main'), workers: of('workers'), v8: of('v8'), other: of('other'), system: of('system') };
}

export async function httpBenchmark(options: HttpOptions): Promise<HttpRow[]> {
  // A build of another revision runs wherever its counterpart of this build does.
  const specs = serverSpecs((name) => !options.only || options.only.includes(name.replace(/-before$/, '')), options.log, options.before);
  const running: Array<{ spec: ServerSpec; server: RunningServer; cookies: string[]; database: string }> = [];
  try {
    for (const spec of specs) {
      const database = spec.postgres
        ? await benchDatabase(spec.postgres)
        : spec.redisCluster
          ? (await benchRedisCluster()).url
          : spec.redis
            ? (await benchRedis()).url
            : join(options.dir, `${spec.name}.db`);
      const server = await startServer(spec.name, spec.node, spec.script, { ...spec.env, DATABASE: database });
      const cookies = await sessionCookies(spec.name, server.url, options.dir, options.sessions);
      running.push({ spec, server, cookies, database });
      options.log(`  started ${spec.name} (${server.url}), ${cookies.length} sessions`);
    }
    for (const { spec, server, cookies } of running) {
      await runLoader<LoadResult>(
        { url: server.url, path: '/w', cookies, connections: options.connections, seconds: options.warmupSeconds },
        options.dir,
      );
      options.log(`  warmed up ${spec.name}`);
    }
    const results = new Map<string, LoadResult[]>();
    const ratios = new Map<string, number[]>();
    const splits = new Map<string, ThreadSplit[]>();
    const xacts = new Map<string, number[]>();
    const dbCpu = new Map<string, number[]>();
    const commands = new Map<string, number[]>();
    const sentCommands = new Map<string, number[]>();
    const bytes = new Map<string, number>();
    for (const { spec, database } of running) if (spec.redis) bytes.set(spec.name, await redisBytesPerKey(database, spec.redis));
    for (let round = 1; round <= options.rounds; round++) {
      for (const workload of ['R', 'W'] as const) {
        let bare: number | null = null;
        for (const { spec, server, cookies, database } of running) {
          // The statistics collector lags: let the previous load's counts land first.
          if (spec.postgres) await sleep(1200);
          const xactBefore = spec.postgres ? await committedTransactions(database) : 0;
          const postmaster = spec.postgres
            ? await benchPostgresPid()
            : spec.redisCluster
              ? null
              : spec.redis
                ? (await benchRedis()).pid()
                : null;
          // A cluster's CPU: its six servers' (replicas included: they apply every write too).
          const clusterPids = spec.redisCluster ? (await benchRedisCluster()).nodes.map((node) => node.pid()) : [];
          const serversCpu = () =>
            spec.redisCluster ? clusterPids.reduce((sum: number, pid) => sum + (postgresCpu(pid) ?? 0), 0) : postgresCpu(postmaster);
          const commandsBefore = spec.redis ? await redisCommandStats(database, spec.redisSends) : { all: 0, sent: 0 };
          const dbBefore = serversCpu();
          const before = sampleThreads(server.process.pid);
          const result = await runLoader<LoadResult>(
            {
              url: server.url,
              path: workload === 'R' ? '/r' : '/w',
              cookies,
              connections: options.connections,
              seconds: options.seconds,
            },
            options.dir,
          );
          const key = `${spec.name}:${workload}`;
          const dbAfter = serversCpu();
          if (dbBefore !== null && dbAfter !== null) dbCpu.set(key, [...(dbCpu.get(key) ?? []), (dbAfter - dbBefore) / result.requests]);
          if (spec.postgres) {
            await sleep(1200);
            // Minus the one transaction each of our two counter reads is.
            xacts.set(key, [...(xacts.get(key) ?? []), ((await committedTransactions(database)) - xactBefore - 1) / result.requests]);
          }
          if (spec.redis) {
            const after = await redisCommandStats(database, spec.redisSends);
            commands.set(key, [...(commands.get(key) ?? []), (after.all - commandsBefore.all) / result.requests]);
            sentCommands.set(key, [...(sentCommands.get(key) ?? []), (after.sent - commandsBefore.sent) / result.requests]);
          }
          const split = splitPerRequest(before, sampleThreads(server.process.pid), result.requests);
          if (split) splits.set(key, [...(splits.get(key) ?? []), split]);
          results.set(key, [...(results.get(key) ?? []), result]);
          if (spec.name === 'bare') bare = result.rps;
          if (bare) ratios.set(key, [...(ratios.get(key) ?? []), result.rps / bare]);
          options.log(
            `  round ${round} ${workload} ${spec.name}: ${Math.round(result.rps)} req/s, p99 ${result.p99.toFixed(2)} ms, ${result.cpuPerRequest.toFixed(0)} µs CPU/req${result.errors + result.non2xx ? `, ${result.errors} errors, ${result.non2xx} non-2xx` : ''}`,
          );
        }
      }
    }
    const rows: HttpRow[] = [];
    for (const workload of ['R', 'W'] as const) {
      for (const { spec } of running) {
        const rounds = results.get(`${spec.name}:${workload}`)!;
        const split = splits.get(`${spec.name}:${workload}`);
        rows.push({
          server: spec.name,
          label: spec.label,
          note: spec.note,
          workload,
          rps: median(rounds.map((r) => r.rps)),
          p50: median(rounds.map((r) => r.p50)),
          p99: median(rounds.map((r) => r.p99)),
          cpuPerRequest: median(rounds.map((r) => r.cpuPerRequest)),
          ratio: median(ratios.get(`${spec.name}:${workload}`) ?? [NaN]),
          errors: rounds.reduce((sum, r) => sum + r.errors, 0),
          non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
          threads: split?.length === rounds.length ? medianSplit(split) : undefined,
          xactPerRequest: xacts.has(`${spec.name}:${workload}`) ? median(xacts.get(`${spec.name}:${workload}`)!) : undefined,
          dbCpuPerRequest: dbCpu.has(`${spec.name}:${workload}`) ? median(dbCpu.get(`${spec.name}:${workload}`)!) : undefined,
          commandsPerRequest: commands.has(`${spec.name}:${workload}`) ? median(commands.get(`${spec.name}:${workload}`)!) : undefined,
          sentPerRequest: sentCommands.has(`${spec.name}:${workload}`) ? median(sentCommands.get(`${spec.name}:${workload}`)!) : undefined,
          bytesPerSession: bytes.get(spec.name),
          rounds,
        });
      }
    }
    return rows;
  } finally {
    for (const { server } of running) await server.stop();
    stopBenchPostgres();
    stopBenchRedis();
  }
}
