// Small helpers shared by the benchmarks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../test/postgres-server.ts';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../test/redis-server.ts';
import { redisCommands } from '../test/engines.ts';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = join(BENCH_DIR, '..');

/**
 * The peers with native addons (better-sqlite3, connect-sqlite3's sqlite3)
 * live in bench/package.json, so that `npm install` of the project stays
 * quick; the first full benchmark installs them. The pinned Node's headers
 * are offered to node-gyp (the machine cannot download headers or prebuilt
 * binaries), but npm may build them for the Node it runs on: a server whose
 * addon only the system Node loads runs on that Node, and the report says so.
 */
export function ensureBenchPeers(log: (line: string) => void): boolean {
  const installed = () =>
    existsSync(join(BENCH_DIR, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')) &&
    existsSync(join(BENCH_DIR, 'node_modules', 'sqlite3', 'build', 'Release', 'node_sqlite3.node')) &&
    existsSync(join(BENCH_DIR, 'node_modules', 'connect-pg-simple', 'package.json')) &&
    existsSync(join(BENCH_DIR, 'node_modules', 'connect-redis', 'package.json')) &&
    existsSync(join(BENCH_DIR, 'node_modules', 'koa-session', 'package.json')) &&
    existsSync(join(BENCH_DIR, 'node_modules', 'hono-sessions', 'package.json'));
  if (installed()) return true;
  const arch = `node-${process.platform}-${process.arch}`;
  const nodedir = [
    dirname(dirname(process.execPath)),
    join(ROOT, 'node_modules', 'node', 'node_modules', arch),
    join(ROOT, 'node_modules', arch),
  ].find((dir) => existsSync(join(dir, 'include', 'node', 'node.h')));
  log(
    `# installing the benchmark's peers (bench/package.json)${nodedir ? `, Node headers offered: ${nodedir}` : ''}; this compiles SQLite twice and takes a few minutes`,
  );
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: BENCH_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) },
  });
  if (result.status !== 0 || !installed()) {
    log('# the benchmark peers could not be installed: their rows are left out');
    return false;
  }
  return true;
}

/** Builds dist/ from src/ (what the benchmark servers import, as users do). */
export function buildPackage(log: (line: string) => void): void {
  log('# building the package (npm run build)');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
  const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('the build failed: the benchmark measures the built package');
}

/**
 * The package as built at git revision `rev` (npm run bench -- --before=REV),
 * in .tmp/before-<rev>-<pid>/dist, for a before/after comparison in one run.
 * Returns the dist/ directory as a file URL ending in '/'.
 */
export function buildRevision(rev: string, log: (line: string) => void): string {
  const hash = spawnSync('git', ['rev-parse', '--short', rev], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  if (!hash) throw new Error(`--before: no git revision ${rev}`);
  // A directory of this run's own: another run (or a --report rendering) never removes it.
  const dir = join(ROOT, '.tmp', `before-${hash}-${process.pid}`);
  log(`# building ${rev} (${hash}) into ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync('sh', ['-c', `git archive ${hash} | tar -x -C "${dir}"`], { cwd: ROOT, stdio: 'inherit' });
  if (archive.status !== 0) throw new Error(`--before: git archive ${hash} failed`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], { cwd: dir, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`--before: the build of ${hash} failed`);
  return pathToFileURL(`${join(dir, 'dist')}/`).href;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function summarize(samples: number[]): { p50: number; p99: number; n: number } {
  const sorted = Float64Array.from(samples).sort();
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), n: sorted.length };
}

export const fmt = (value: number, digits = 0) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

export function scratch(prefix = 'bench-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunningServer {
  name: string;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a server process and waits for its `READY <port>` line. */
export function startServer(
  name: string,
  node: string,
  script: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [...nodeArgs, script], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start: ${stderr}`));
    }, 30000);
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /READY (\d+)/.exec(String(chunk));
      if (!match) return;
      clearTimeout(timer);
      resolve({
        name,
        process: child,
        url: `http://127.0.0.1:${match[1]}`,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            child.kill('SIGTERM');
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${stderr}`));
    });
  });
}

/** Runs the loader in its own process with a job; resolves with its JSON output. */
export function runLoader<T>(job: unknown, dir: string): Promise<T> {
  const file = join(dir, `job-${process.hrtime.bigint()}.json`);
  writeFileSync(file, JSON.stringify(job));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(BENCH_DIR, 'loader.ts'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    child.once('exit', (code) => {
      rmSync(file, { force: true });
      if (code !== 0) return reject(new Error(`loader exited with ${code}`));
      resolve(JSON.parse(out) as T);
    });
  });
}

/**
 * The benchmark's PostgreSQL server (test/postgres-server.ts), started on
 * first use and stopped with the process; each server under test gets a
 * database of its own on it.
 */
let postgres: Promise<PostgresServer> | null = null;
export async function benchDatabase(name: string): Promise<string> {
  postgres ??= startPostgres({ settings: { max_connections: 300 } });
  const server = await postgres;
  const client = new pg.Client({ connectionString: server.url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name}`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return server.urlOf(name);
}

/** The benchmark PostgreSQL server's postmaster pid (for its CPU time), once started. */
export async function benchPostgresPid(): Promise<number | null> {
  if (!postgres) return null;
  const server = await postgres;
  try {
    return Number(readFileSync(join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
}

export function stopBenchPostgres(): void {
  void postgres?.then((server) => server.destroy());
  postgres = null;
}

/**
 * The benchmark's Redis server (test/redis-server.ts: AOF with appendfsync
 * always, as the tests run it), started on first use; every Redis row runs
 * on it, each store under its own key prefix.
 */
let redis: Promise<RedisServer> | null = null;
export async function benchRedis(): Promise<RedisServer> {
  // BENCH_REDIS_FSYNC=everysec: the same rows on Redis's common production setting.
  redis ??= startRedis({ settings: { appendfsync: process.env.BENCH_REDIS_FSYNC ?? 'always' } });
  return redis;
}

/** The benchmark's Redis Cluster (three primaries, three replicas, as the tests run it), started on first use. */
let cluster: Promise<RedisCluster> | null = null;
export async function benchRedisCluster(): Promise<RedisCluster> {
  cluster ??= startRedisCluster();
  return cluster;
}

export function stopBenchRedis(): void {
  void redis?.then(
    (server) => server.destroy(),
    () => {},
  );
  redis = null;
  void cluster?.then(
    (servers) => servers.destroy(),
    () => {},
  );
  cluster = null;
}

/**
 * Commands the Redis server has run so far (INFO commandstats): every
 * command's calls summed (a script's own calls included), and those of the
 * commands named in `sent` (the ones a client sends itself: EVALSHA for ours).
 */
export function redisCommandStats(url: string, sent?: string[]): Promise<{ all: number; sent: number }> {
  return redisCommands(async (_send, _scan, nodes) => {
    let all = 0;
    let named = 0;
    // On a cluster, every primary's (replicas run the writes again: they are not counted).
    for (const send of await nodes()) {
      const info = String(await send('INFO', 'commandstats'));
      for (const match of info.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) {
        all += Number(match[2]);
        if (!sent || sent.includes(match[1])) named += Number(match[2]);
      }
    }
    return { all, sent: named };
  }, url);
}

/** The mean MEMORY USAGE of up to 200 keys matching `pattern` (one session's key), in bytes. */
export function redisBytesPerKey(url: string, pattern: string): Promise<number> {
  return redisCommands(async (send, scan) => {
    const sample = (await scan(pattern)).slice(0, 200);
    let total = 0;
    for (const key of sample) total += Number(await send('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    return sample.length === 0 ? Number.NaN : total / sample.length;
  }, url);
}

/** Committed transactions of a database so far (pg_stat_database; the counters lag by up to a second). */
export async function committedTransactions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()');
    return Number(rows[0].xact_commit);
  } finally {
    await client.end();
  }
}

/**
 * The cookies the loader spreads over a server's requests: `count` sessions
 * logged in first; the bare servers (bare, bare-hop, bare-sqlite) have no
 * sessions and get one inert cookie.
 */
export async function sessionCookies(server: string, url: string, dir: string, count = 1000): Promise<string[]> {
  return server.startsWith('bare') ? ['none=1'] : runLoader<string[]>({ create: count, url }, dir);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
