// Runs the type check and every uvu suite (each in its own process, so a
// suite's signals, threads and exit checks cannot leak into another), then
// prints the one summary line CI reads: `N passed, N failed, N skipped`.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { floorNode } from './helpers.ts';
import { startPgBouncer, startPostgres, type PgBouncer, type PostgresServer } from './postgres-server.ts';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from './redis-server.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const only = process.argv.slice(2);
const files = readdirSync(join(root, 'test'))
  .filter((name) => name.endsWith('.test.ts'))
  .filter((name) => only.length === 0 || only.some((part) => name.includes(part)))
  .sort();

let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];

function run(
  command: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_DISABLE_COLORS: '1', ...env },
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      output += `\n[run] killed after ${timeoutMs} ms\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

if (only.length === 0) {
  console.log('# typecheck (tsc --noEmit: the package, its tests and benchmarks; then the examples)');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], 300_000);
  // The examples as a user's code: against the built package (npm test builds it first).
  const examples = result.code === 0 ? await run(process.execPath, [tsc, '-p', 'examples/tsconfig.json'], 300_000) : result;
  if (examples.code === 0) passed++;
  else {
    failed++;
    failures.push('typecheck');
  }

  // The linter and the formatter's check (biome.json): a finding or an unformatted file fails the run.
  console.log('# lint and format (biome check)');
  const biome = join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  const lint = await run(process.execPath, [biome, 'check', '--error-on-warnings', '.'], 120_000);
  if (lint.code === 0) passed++;
  else {
    failed++;
    failures.push('lint');
  }
}

// The suites that must also pass on the lowest Node in engines (type
// stripping is behind a flag there).
const FLOOR_SUITES = [
  'store.test.ts',
  'owners.test.ts',
  'lifetime.test.ts',
  'express-session-store.test.ts',
  'http.test.ts',
  'http-edges.test.ts',
  'build.test.ts',
  'diagnostics.test.ts',
];
// One contract suite, three engines: these suites run again on PostgreSQL
// and on Redis (test/engines.ts), each on one server this runner starts and
// stops; the postgres-*.test.ts suites test that engine alone.
const CONTRACT_SUITES = [
  'store.test.ts',
  'owners.test.ts',
  'http.test.ts',
  'http-edges.test.ts',
  'front-doors.test.ts',
  'express-session-store.test.ts',
  'metrics.test.ts',
  'sessions-meet.test.ts',
  'lifetime.test.ts',
];
const ON_POSTGRES = { SUPERVISED_SESSIONS_TEST_ENGINE: 'postgres' };
const ON_REDIS = { SUPERVISED_SESSIONS_TEST_ENGINE: 'redis' };
type Run = { file: string; node: string; args: string[]; label: string; env?: NodeJS.ProcessEnv };
const runs: Run[] = files
  .filter((file) => !file.startsWith('postgres') && !file.startsWith('redis'))
  .map((file) => ({ file, node: process.execPath, args: [], label: file }));
const postgresRuns: Run[] = [
  ...files
    .filter((file) => CONTRACT_SUITES.includes(file))
    .map((file) => ({ file, node: process.execPath, args: [], label: `${file} on PostgreSQL`, env: ON_POSTGRES })),
  ...files
    .filter((file) => file.startsWith('postgres'))
    .map((file) => ({ file, node: process.execPath, args: [], label: file, env: ON_POSTGRES })),
];
let postgres: PostgresServer | null = null;
if (postgresRuns.length > 0) {
  try {
    const started = Date.now();
    postgres = await startPostgres();
    console.log(`\n# PostgreSQL test server on 127.0.0.1:${postgres.port} (started in ${Date.now() - started} ms)`);
    for (const entry of postgresRuns) entry.env = { ...entry.env, SUPERVISED_SESSIONS_TEST_PG_URL: postgres.url };
    runs.push(...postgresRuns);
  } catch (error) {
    console.log(`\n# PostgreSQL test server: ${(error as Error).message}`);
    failed++;
    failures.push('PostgreSQL test server');
  }
}
// The same contract suites through PgBouncer 1.18 in transaction mode, in
// front of the same server (URL ?pgbouncer=true: no named prepared
// statements). Each suite's own database is made on the server directly.
const bouncerRuns: Run[] = files
  .filter((file) => CONTRACT_SUITES.includes(file))
  .map((file) => ({ file, node: process.execPath, args: [], label: `${file} on PostgreSQL through PgBouncer`, env: ON_POSTGRES }));
let bouncer: PgBouncer | null = null;
if (bouncerRuns.length > 0 && postgres) {
  try {
    bouncer = await startPgBouncer(postgres);
    console.log(`\n# PgBouncer (transaction pooling) on 127.0.0.1:${bouncer.port}`);
    for (const entry of bouncerRuns)
      entry.env = { ...entry.env, SUPERVISED_SESSIONS_TEST_PG_URL: postgres.url, SUPERVISED_SESSIONS_TEST_PGBOUNCER: String(bouncer.port) };
    runs.push(...bouncerRuns);
  } catch (error) {
    // Never a quiet skip: a machine without pgbouncer fails the run, saying why.
    console.log(`\n# PgBouncer: ${(error as Error).message}`);
    failed++;
    failures.push('PgBouncer');
  }
}
// The same contract suites on Redis (one redis-server with AOF, started here); redis-*.test.ts test that engine alone.
const redisRuns: Run[] = [
  ...files
    .filter((file) => CONTRACT_SUITES.includes(file))
    .map((file) => ({ file, node: process.execPath, args: [], label: `${file} on Redis`, env: ON_REDIS })),
  ...files
    .filter((file) => file.startsWith('redis'))
    .map((file) => ({ file, node: process.execPath, args: [], label: file, env: ON_REDIS })),
];
let redis: RedisServer | null = null;
if (redisRuns.length > 0) {
  try {
    const started = Date.now();
    redis = await startRedis();
    console.log(`\n# Redis test server on 127.0.0.1:${redis.port} (started in ${Date.now() - started} ms)`);
    for (const entry of redisRuns) entry.env = { ...entry.env, SUPERVISED_SESSIONS_TEST_REDIS_URL: redis.url };
    runs.push(...redisRuns);
  } catch (error) {
    // Never a quiet skip: a machine without redis-server fails the run, saying why.
    console.log(`\n# Redis test server: ${(error as Error).message}`);
    failed++;
    failures.push('Redis test server');
  }
}
// And on a Redis Cluster: six servers (three primaries, three replicas), started here.
// (with the fleet: three app processes on it).
const clusterRuns: Run[] = files
  .filter((file) => CONTRACT_SUITES.includes(file) || file === 'redis-fleet.test.ts')
  .map((file) => ({
    file,
    node: process.execPath,
    args: [],
    label: `${file} on a Redis Cluster`,
    env: { ...ON_REDIS, SUPERVISED_SESSIONS_TEST_REDIS_CLUSTER: '1' },
  }));
let cluster: RedisCluster | null = null;
if (clusterRuns.length > 0) {
  try {
    const started = Date.now();
    cluster = await startRedisCluster();
    console.log(`\n# Redis Cluster for the tests: ${cluster.url} (ready in ${Date.now() - started} ms)`);
    for (const entry of clusterRuns) entry.env = { ...entry.env, SUPERVISED_SESSIONS_TEST_REDIS_URL: cluster.url };
    runs.push(...clusterRuns);
  } catch (error) {
    console.log(`\n# Redis Cluster: ${(error as Error).message}`);
    failed++;
    failures.push('Redis Cluster');
  }
}
const floorFiles = files.filter((file) => FLOOR_SUITES.includes(file));
if (floorFiles.length > 0) {
  try {
    const floor = floorNode();
    for (const file of floorFiles)
      runs.push({
        file,
        node: floor.path,
        args: ['--experimental-strip-types', '--no-warnings'],
        label: `${file} on Node ${floor.version}`,
      });
  } catch (error) {
    console.log(`\n# the lowest Node in engines: ${(error as Error).message}`);
    failed++;
    failures.push('floor Node install');
  }
}

// uvu runs the tests registered before test.run() and silently drops any
// registered after it: a suite with a test below its test.run() fails here.
for (const file of files) {
  const text = readFileSync(join(root, 'test', file), 'utf8');
  const at = text.lastIndexOf('\ntest.run()');
  if (at === -1) continue;
  if (/^\s*(test|sqliteOnly|postgresOnly|redisOnly|sqlOnly|browserTest)(\.skip|\.only)?\(/m.test(text.slice(at + 1))) {
    console.log(`\n# ${file}: a test is registered after test.run(), where uvu never runs it`);
    failed++;
    failures.push(`${file} (a test after test.run())`);
  }
}

for (const { file, node, args, label, env } of runs) {
  console.log(`\n# ${label}`);
  const result = await run(node, [...args, join(root, 'test', file)], 600_000, env);
  // uvu's closing block: "Total: N / Passed: N / Skipped: N".
  // (Total excludes skipped tests.)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
  const plain = result.output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    // The suite died before its summary: count it as one failure.
    failed++;
    failures.push(`${label} (no summary, exit ${result.code})`);
    continue;
  }
  passed += ok;
  skipped += skip;
  const bad = total - ok;
  failed += bad;
  if (bad > 0 || result.code !== 0) {
    if (bad === 0) failed++;
    failures.push(label);
  }
}

bouncer?.destroy();
postgres?.destroy();
redis?.destroy();
cluster?.destroy();
if (failures.length) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
