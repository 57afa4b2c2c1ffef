// npm run drill: the example server under load, while things break.
//
// A loader keeps read-modify-write counters in many sessions and records
// every acknowledged value; faults are injected while it runs; at the end
// every session is checked against the record. Prints the figures, and on a
// full run writes docs/reliability.md.
//   --quick   a bounded version (for npm test): fewer, shorter faults
//   --json    print the summary as JSON (for the test)
//   --engine postgres   the same drill on a PostgreSQL server this script
//             starts (test/postgres-server.ts); the SQLite lock faults are
//             replaced by the server's: restart (-m fast), crash (-m
//             immediate) and back, our backends terminated, and (full run)
//             the server down past requestTimeout.
//   --engine postgres --ha sync|async   a primary and a streaming standby
//             (pg_basebackup -R; synchronous_standby_names '*' with sync),
//             the app on the two-host URL: our backends terminated, the
//             primary SIGKILLed and the standby promoted, the old primary
//             back as a standby of the new one (first in the host list, so
//             the engine must skip it), and (full run) a failback. Only
//             these faults run (the process kills are the plain drill's).
//   --engine postgres --pgbouncer   the app through PgBouncer (transaction
//             pooling, ?pgbouncer=true): our server connections terminated,
//             the server restarted and crashed behind it, PgBouncer itself
//             SIGKILLed and restarted.
//   --engine redis   the same on a redis-server this script starts
//             (test/redis-server.ts: AOF, appendfsync always): our
//             connections killed (CLIENT KILL), Redis SIGKILLed and restarted
//             (its AOF replayed), and (full run) Redis down past requestTimeout.
//   --engine redis --cluster [--wait-replicas N]   a Redis Cluster of six
//             servers (three primaries, three replicas): our connections
//             killed on every node, slots moved under load (reshard), and a
//             primary SIGKILLed so its replica takes over (then brought back
//             as a replica); URL ?waitReplicas=N (default 1). Acknowledged
//             writes a failover lost are counted, not hidden.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Pool } from 'undici';
import { median, ROOT, scratch } from './lib.ts';
import { startPgBouncer, startPostgres, startStandby, setSync, type PgBouncer, type PostgresServer } from '../test/postgres-server.ts';
import { redisBinaries, startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../test/redis-server.ts';
import { redisCommands } from '../test/engines.ts';
import { adminQuery } from '../test/engines.ts';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const log = (line: string) => {
  if (!asJson) process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const random = (min: number, max: number) => min + Math.random() * (max - min);

const SESSIONS = quick ? 60 : 200;
const LOOPS = quick ? 12 : 32;
const engineAt = process.argv.indexOf('--engine');
const engine = engineAt === -1 ? 'sqlite' : process.argv[engineAt + 1];
if (engine !== 'sqlite' && engine !== 'postgres' && engine !== 'redis')
  throw new Error(`--engine: expected sqlite, postgres or redis, got ${engine}`);
const temp = scratch('drill-');
let postgres: PostgresServer | null = engine === 'postgres' ? await startPostgres() : null;
const haAt = process.argv.indexOf('--ha');
const ha = haAt === -1 ? null : process.argv[haAt + 1];
if (ha !== null && ((ha !== 'sync' && ha !== 'async') || engine !== 'postgres'))
  throw new Error('--ha: sync or async, with --engine postgres');
let standby: PostgresServer | null = postgres && ha ? await startStandby(postgres, { sync: ha === 'sync' }) : null;
const overBouncer = engine === 'postgres' && process.argv.includes('--pgbouncer');
const bouncer: PgBouncer | null = postgres && overBouncer ? await startPgBouncer(postgres) : null;
/** Only the faults of the mode asked for (the process kills are the plain drill's). */
const focused = ha !== null || overBouncer;
const onCluster = engine === 'redis' && process.argv.includes('--cluster');
const waitAt = process.argv.indexOf('--wait-replicas');
const waitReplicas = waitAt === -1 ? 1 : Number(process.argv[waitAt + 1]);
if (waitReplicas !== 0 && waitReplicas !== 1) throw new Error('--wait-replicas: 0 or 1 (the cluster has one replica per primary)');
const cluster: RedisCluster | null = onCluster ? await startRedisCluster() : null;
const redis: RedisServer | null = engine === 'redis' && !onCluster ? await startRedis() : null;
const database = postgres
  ? standby
    ? `postgres://postgres@127.0.0.1:${postgres.port},127.0.0.1:${standby.port}/postgres`
    : bouncer
      ? bouncer.urlOf('postgres')
      : postgres.url
  : redis
    ? redis.url
    : cluster
      ? `${cluster.url}${waitReplicas > 0 ? `?waitReplicas=${waitReplicas}` : ''}`
      : join(temp.dir, 'drill.db');

// ---- the server ---------------------------------------------------------

interface Server {
  process: ChildProcess;
  url: string;
  pool: Pool;
  exited: Promise<{ code: number | null; signal: string | null }>;
}
let server: Server | null = null;
let serverOutput = '';

function startExample(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'examples', 'server.ts')], {
      env: { ...process.env, PORT: '0', DATABASE: database, SESSIONS_ADMIN: '1', CLEANER_INTERVAL: '2', MAX_AGE: '3600' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    const timer = setTimeout(() => reject(new Error(`the example server did not start: ${serverOutput}`)), 20000);
    child.stderr!.on('data', (chunk) => {
      serverOutput += chunk;
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      serverOutput += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(String(chunk));
      if (!match) return;
      clearTimeout(timer);
      resolve({ process: child, url: match[1], pool: new Pool(match[1], { connections: LOOPS + 4 }), exited });
    });
  });
}

async function admin(path: string): Promise<string> {
  const response = await server!.pool.request({ path, method: 'POST' });
  return response.body.text();
}

// ---- the loader ---------------------------------------------------------

// loggedOut: the logout was answered; logoutUnconfirmed: it was sent but its
// reply was lost to a fault, so the session may or may not be gone.
interface Client {
  cookie: string;
  acked: number;
  loggedOut: boolean;
  logoutUnconfirmed: boolean;
}
const clients: Client[] = [];
/** Failures by the phase of the drill they happened in, then by status or error. */
const failures = new Map<string, Map<string, number>>();
let phase = 'steady load';
let sent = 0;
let acknowledged = 0;
let running = true;

/** Requests answered with a failure before requestTimeout (5 s, the example's default) had passed. */
let failedEarly = 0;
const REQUEST_TIMEOUT_MS = 5000;

function fail(kind: string, sentAt?: number): void {
  if (sentAt !== undefined && /^5\d\d$/.test(kind) && performance.now() - sentAt < REQUEST_TIMEOUT_MS - 250) failedEarly++;
  const byKind = failures.get(phase) ?? new Map<string, number>();
  byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  failures.set(phase, byKind);
}

/** The fault being watched: the first write acknowledged for a request sent after it took effect ends its recovery. */
let watched: Fault | null = null;
function acked(sentAt: number): void {
  acknowledged++;
  const now = performance.now();
  if (watched && watched.recoveryMs === null && sentAt > watched.at) watched.recoveryMs = now - watched.at;
}

async function post(path: string, cookie?: string): Promise<{ status: number; body: string; setCookie?: string }> {
  const current = server!;
  const response = await current.pool.request({
    path,
    method: 'POST',
    headers: cookie ? { cookie } : {},
    headersTimeout: 15000,
    bodyTimeout: 15000,
  });
  const body = await response.body.text();
  const raw = response.headers['set-cookie'];
  return { status: response.statusCode, body, setCookie: Array.isArray(raw) ? raw[0] : raw };
}

/** Sessions that were logged out: their cookies must never find a session again. */
const retired: Client[] = [];

async function loop(index: number, deadline: number): Promise<void> {
  const mine = clients.filter((_, i) => i % LOOPS === index);
  let turn = 0;
  while (running && performance.now() < deadline && sent < 2_000_000) {
    const slot = turn++ % mine.length;
    const client = mine[slot];
    sent++;
    const sentAt = performance.now();
    try {
      if (client.loggedOut || client.logoutUnconfirmed) {
        // Log in again: a new session takes the place of the one logged out.
        const reply = await post('/counter');
        if (reply.status === 200 && reply.setCookie) {
          retired.push(client);
          mine[slot] = { cookie: reply.setCookie.split(';')[0], acked: 1, loggedOut: false, logoutUnconfirmed: false };
          clients.push(mine[slot]);
          acked(sentAt);
        } else {
          fail(String(reply.status), sentAt);
        }
        continue;
      }
      // Now and then a client logs out: its session must never come back.
      if (Math.random() < 0.001) {
        client.logoutUnconfirmed = true;
        const reply = await post('/logout', client.cookie);
        if (reply.status === 303) client.loggedOut = true;
        else fail(String(reply.status), sentAt);
        continue;
      }
      const reply = await post('/counter', client.cookie);
      if (reply.status === 200) {
        const { n } = JSON.parse(reply.body) as { n: number };
        client.acked = n;
        acked(sentAt);
      } else {
        fail(String(reply.status), sentAt);
      }
    } catch (error) {
      fail((error as { code?: string }).code ?? 'network');
      await sleep(20);
    }
  }
}

// ---- faults -------------------------------------------------------------

interface Fault {
  name: string;
  at: number;
  recoveryMs: number | null;
}
const faults: Fault[] = [];

/**
 * Injects a fault; `effective()` marks the moment it takes effect (by
 * default, when injection starts). Its recovery time runs from that moment to
 * the first acknowledged write of a request sent after it.
 */
async function fault(name: string, inject: (effective: () => void) => Promise<void>, marksEffective = false): Promise<void> {
  const record: Fault = { name, at: performance.now(), recoveryMs: null };
  faults.push(record);
  phase = name;
  const effective = () => {
    record.at = performance.now();
    watched = record;
  };
  if (!marksEffective) effective();
  await inject(effective);
  const until = performance.now() + 30000;
  while (record.recoveryMs === null && performance.now() < until) await sleep(5);
  watched = null;
  log(`  ${name}: recovered in ${record.recoveryMs === null ? 'never' : `${record.recoveryMs.toFixed(0)} ms`}`);
  await sleep(200);
  phase = 'steady load';
}

async function status(): Promise<{ state: string; children: Record<string, { state: string; restarts: number }> }> {
  return JSON.parse(await admin('/admin/status'));
}

async function untilRunning(child: 'store' | 'cleaner'): Promise<void> {
  const end = performance.now() + 10000;
  while (performance.now() < end) {
    try {
      if ((await status()).children[child].state === 'running') return;
    } catch {
      /* restarting */
    }
    await sleep(20);
  }
  throw new Error(`${child} did not come back`);
}

const sql = (text: string, values: unknown[] = []) => adminQuery(text, values, database);

// Dead sessions on Redis (the example's prefix, 'session'): last used two hours ago, kept a day.
const SEED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, tonumber(ARGV[1]) do
  local key = KEYS[1] .. ARGV[2] .. '-' .. i
  redis.call('HSET', key, 'c', now - 7200000, 't', now - 7200000)
  redis.call('PEXPIRE', key, 86400000)
end
return 0`;

async function plantBacklog(count: number): Promise<void> {
  if (redis || cluster) {
    const batch = `${Date.now()}`;
    await redisCommands(
      async (send) => {
        for (let done = 0, k = 0; done < count; done += 5000, k++) {
          // On a cluster, each batch in a group of its own (its keys in one slot, the groups spread over the primaries).
          const head = cluster ? `session:s:{p${k}}planted` : 'session:s:planted';
          await send('EVAL', SEED, '1', head, String(Math.min(5000, count - done)), `${batch}-${done}`);
        }
      },
      (redis ?? cluster)!.url,
    );
    return;
  }
  if (postgres) {
    await sql(
      `INSERT INTO session (sid_hash, data, created_at, touched_at)
      SELECT sha256(gen_random_uuid()::text::bytea), '{}', t, t FROM generate_series(1, $1) AS i,
      (SELECT (extract(epoch from now()) * 1000)::bigint - 7200000 AS t) AS at`,
      [count],
    );
    return;
  }
  const db = new DatabaseSync(database);
  db.exec('PRAGMA busy_timeout = 10000');
  const at = Date.now() - 7_200_000;
  db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO session (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{}', ?, ? FROM c`).run(count, at, at);
  db.close();
}

/** Another process holds SQLite's write lock (as a backup tool might) for `ms`; resolves once it holds it. */
function holdWriteLock(ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(${JSON.stringify(database)});
      db.exec('PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE');
      process.stdout.write('locked\\n');
      setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, ${ms});
    `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    holder.stdout!.once('data', () => resolve());
    holder.once('exit', (code) => {
      if (code !== 0) reject(new Error(`lock holder exited with ${code}`));
    });
  });
}

// ---- the drill ----------------------------------------------------------

const started = performance.now();
server = await startExample();
log(`example server at ${server.url} (database ${database})`);
for (let i = 0; i < SESSIONS; i++) {
  const reply = await post('/counter');
  if (reply.status !== 200 || !reply.setCookie) throw new Error(`could not create session ${i}: ${reply.status}`);
  clients.push({ cookie: reply.setCookie.split(';')[0], acked: 1, loggedOut: false, logoutUnconfirmed: false });
}
log(`${clients.length} sessions created`);

const loadDeadline = performance.now() + (quick ? 60_000 : 240_000);
const loops = Array.from({ length: LOOPS }, (_, i) => loop(i, loadDeadline));
await sleep(500);

if (!focused) {
  log('1. killing the store actor at random moments');
  for (let k = 0; k < (quick ? 3 : 10); k++) {
    // At least 2 s apart: the default intensity (3 in 5 s) must not be exceeded here.
    await sleep(random(2000, quick ? 2500 : 3500));
    await untilRunning('store');
    await fault(`store kill ${k + 1}`, async () => {
      await admin('/admin/kill/store');
    });
  }

  log('2. killing the cleaner during long sweeps');
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(2000);
    await plantBacklog(quick ? 60_000 : 200_000);
    await untilRunning('cleaner');
    const sweep = admin('/admin/sweep').catch(() => 'failed');
    await sleep(300);
    await fault(`cleaner kill ${k + 1}`, async () => {
      await admin('/admin/kill/cleaner');
    });
    await sweep;
  }

  log('3. SIGUSR2 bursts');
  for (let k = 0; k < (quick ? 1 : 3); k++) {
    await sleep(1000);
    await fault(`SIGUSR2 burst ${k + 1}`, async () => {
      for (let i = 0; i < 20; i++) server!.process.kill('SIGUSR2');
    });
  }

  log('4. SIGKILL of the whole server, restarted on the same file');
  for (let k = 0; k < 2; k++) {
    await sleep(2000);
    await fault(`server SIGKILL ${k + 1}`, async () => {
      const old = server!;
      old.process.kill('SIGKILL');
      await old.exited;
      void old.pool.destroy();
      server = await startExample();
    });
  }
}

if (standby && postgres) {
  log(`5. failover: primary and ${ha} standby, the app on a two-host URL`);
  const terminate = (on: PostgresServer) =>
    adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'supervised-sessions%'`, [], on.url);
  await sleep(1500);
  await fault('pg_terminate_backend on the primary 1', async () => {
    await terminate(postgres!);
  });
  const rounds = quick ? 1 : 2;
  for (let k = 0; k < rounds; k++) {
    await sleep(2000);
    // The primary's machine is lost; the standby is promoted (as an HA tool would, at once).
    const old = postgres;
    const next = standby;
    await fault(
      `failover ${k + 1}: primary SIGKILLed, ${ha} standby promoted`,
      async (effective) => {
        old.kill();
        effective();
        await next.promote();
      },
      true,
    );
    postgres = next;
    await sleep(1500);
    // The old primary comes back as a standby of the new one, on its own
    // port (so the host list is unchanged), and our connections are dropped:
    // reconnecting walks the list, and the first host is now a standby.
    await fault(
      `old primary back as a standby, first in the host list ${k + 1}`,
      async (effective) => {
        const port = old.port;
        old.destroy();
        standby = await startStandby(next, { sync: ha === 'sync', port });
        // Timed from here: our connections dropped, the first host is a standby now.
        effective();
        await terminate(next);
      },
      true,
    );
    if (ha === 'sync') await setSync(next, true);
  }
} else if (bouncer && postgres) {
  log('5. PgBouncer (transaction pooling) between the app and the server');
  const server = postgres;
  await sleep(1500);
  await fault('server connections terminated behind PgBouncer 1', async () => {
    await adminQuery(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      [],
      server.url,
    );
  });
  await sleep(2000);
  await fault(
    'server restart -m fast behind PgBouncer 1',
    async (effective) => {
      await server.stopAsync('fast');
      effective();
      await server.startAsync();
    },
    true,
  );
  await sleep(2000);
  await fault(
    'PgBouncer SIGKILLed and restarted 1',
    async (effective) => {
      await bouncer!.restart();
      effective();
    },
    true,
  );
} else if (postgres) {
  log('5. the PostgreSQL server restarts, crashes, drops our connections');
  const terminate = () => sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'supervised-sessions%'`);
  for (let k = 0; k < (quick ? 1 : 3); k++) {
    await sleep(1500);
    await fault(`pg_terminate_backend ${k + 1}`, async () => {
      await terminate();
    });
  }
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(2000);
    // Recovery runs from the moment the server is down.
    await fault(
      `server restart -m fast ${k + 1}`,
      async (effective) => {
        await postgres!.stopAsync('fast');
        effective();
        await postgres!.startAsync();
      },
      true,
    );
  }
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(2000);
    await fault(
      `server crash -m immediate, restarted ${k + 1}`,
      async (effective) => {
        await postgres!.stopAsync('immediate');
        effective();
        await postgres!.startAsync();
      },
      true,
    );
  }
  if (!quick) {
    await sleep(2000);
    await fault(
      'server down 7 s (past requestTimeout)',
      async (effective) => {
        await postgres!.stopAsync('fast');
        effective();
        await sleep(7000);
        await postgres!.startAsync();
      },
      true,
    );
  }
} else if (cluster) {
  log(`5. the Redis Cluster drops our connections, moves slots, and fails over (waitReplicas=${waitReplicas})`);
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(1500);
    await fault(`CLIENT KILL of our connections on every node ${k + 1}`, async () => {
      for (const node of cluster.nodes) node.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    });
  }
  await sleep(1500);
  await fault('500 slots moved under load (reshard)', async () => {
    const from = cluster.primaryOf(0);
    const to = cluster.primaryOf(16383);
    const bin = redisBinaries();
    const id = (node: RedisServer) => node.cli('CLUSTER', 'MYID').trim();
    await new Promise<void>((resolve) => {
      const child = spawn(
        bin.cli,
        ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', id(from), '--cluster-to', id(to)].concat([
          '--cluster-slots',
          '500',
          '--cluster-pipeline',
          '10',
          '--cluster-yes',
        ]),
        { env: bin.env, stdio: 'ignore' },
      );
      child.on('exit', () => resolve());
    });
  });
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(2000);
    // Recovery runs from the kill; the old primary comes back as its replica (so WAIT can be met again).
    await fault(
      `primary SIGKILL, replica promoted ${k + 1}`,
      async (effective) => {
        const victim = cluster.primaryOf(k === 0 ? 100 : 16000);
        await victim.kill();
        effective();
        await sleep(3000);
        await victim.start();
        await cluster.ready();
      },
      true,
    );
  }
} else if (redis) {
  log('5. Redis drops our connections, crashes (SIGKILL) and restarts from its AOF');
  for (let k = 0; k < (quick ? 1 : 3); k++) {
    await sleep(1500);
    await fault(`CLIENT KILL of our connections ${k + 1}`, async () => {
      redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    });
  }
  for (let k = 0; k < (quick ? 1 : 2); k++) {
    await sleep(2000);
    // Recovery runs from the moment the server is down.
    await fault(
      `Redis SIGKILL, restarted ${k + 1}`,
      async (effective) => {
        await redis.kill();
        effective();
        await redis.start();
      },
      true,
    );
  }
  if (!quick) {
    await sleep(2000);
    await fault(
      'Redis down 7 s (past requestTimeout)',
      async (effective) => {
        await redis.kill();
        effective();
        await sleep(7000);
        await redis.start();
      },
      true,
    );
  }
} else {
  log('5. another process holds the write lock');
  await sleep(2000);
  await fault(
    'write lock held 1.5 s',
    async (effective) => {
      await holdWriteLock(1500);
      effective();
    },
    true,
  );
  if (!quick) {
    await sleep(2000);
    await fault(
      'write lock held 7 s (past requestTimeout)',
      async (effective) => {
        await holdWriteLock(7000);
        effective();
      },
      true,
    );
  }
}

let giveUp = { exitCode: null as number | null, exitMs: NaN, saw503: false };
if (!focused) {
  log('6. past the restart intensity: the failure must be loud, never a hang');
  await sleep(1000);
  await fault(
    'supervisor gives up (server restarted)',
    async (effective) => {
      const failing = server!;
      for (let k = 0; k < 4; k++) {
        try {
          await untilRunning('store');
          await admin('/admin/kill/store');
        } catch {
          break;
        }
      }
      // The 4th kill inside the period: the supervisor has given up now.
      effective();
      const at = performance.now();
      const probe = await post('/counter', clients[0].cookie).catch(() => null);
      const exit = await Promise.race([failing.exited, sleep(15000).then(() => null)]);
      giveUp = {
        exitCode: exit?.code ?? null,
        exitMs: performance.now() - at,
        saw503: probe?.status === 503 || serverOutput.includes('supervisor gave up'),
      };
      if (!exit) failing.process.kill('SIGKILL');
      void failing.pool.destroy();
      server = await startExample();
    },
    true,
  );
}

await sleep(2000);
running = false;
await Promise.all(loops);

// ---- verification ---------------------------------------------------------

let lost = 0;
let ahead = 0;
let resurrected = 0;
for (const client of new Set([...clients, ...retired])) {
  const reply = await server!.pool.request({ path: '/counter', method: 'GET', headers: { cookie: client.cookie } });
  const { n } = JSON.parse(await reply.body.text()) as { n: number };
  if (client.loggedOut) {
    if (n !== 0) resurrected++;
  } else if (client.logoutUnconfirmed && n === 0) {
    // The logout went through, its reply did not: gone, as asked.
  } else if (n < client.acked) {
    lost++;
  } else if (n > client.acked) {
    // Stored but never acknowledged (the reply was lost to a fault): not a loss.
    ahead++;
  }
}
server.process.kill('SIGTERM');
await server.exited;
await server.pool.destroy();
bouncer?.destroy();
standby?.destroy();
postgres?.destroy();
redis?.destroy();
cluster?.destroy();
temp.remove();

const recoveries = faults.map((f) => f.recoveryMs).filter((ms): ms is number => ms !== null);
const summary = {
  durationS: (performance.now() - started) / 1000,
  sessions: SESSIONS,
  sessionsCreated: new Set([...clients, ...retired]).size,
  loggedOut: new Set([...clients, ...retired].filter((c) => c.loggedOut)).size,
  requestsSent: sent,
  failed: Object.fromEntries([...failures].map(([name, byKind]) => [name, Object.fromEntries(byKind)])),
  acknowledgedWrites: acknowledged,
  acknowledgedWritesLost: lost,
  failedBeforeRequestTimeout: failedEarly,
  storedButUnacknowledged: ahead,
  resurrectedAfterLogout: resurrected,
  faults: faults.map((f) => ({ name: f.name, recoveryMs: f.recoveryMs === null ? null : Math.round(f.recoveryMs) })),
  unrecovered: faults.filter((f) => f.recoveryMs === null).length,
  recoveryMs: { p50: Math.round(median(recoveries)), max: Math.round(Math.max(...recoveries)) },
  supervisorGaveUp: { exitCode: giveUp.exitCode, exitedWithinMs: Math.round(giveUp.exitMs), loud: giveUp.saw503 },
};

if (asJson) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} else {
  const lines = [
    ...(cluster
      ? [
          `## Redis Cluster engine, waitReplicas=${waitReplicas}`,
          '',
          `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill -- --engine redis --cluster --wait-replicas ${waitReplicas}\` (Node ${process.version}, six redis-server processes from test/redis-server.ts on loopback — three primaries, three replicas, cluster-node-timeout 1000 ms, AOF with appendfsync always — ${summary.durationS.toFixed(0)} s).`,
          `The same example server, loader and checks, with \`DATABASE\` a redis+cluster:// URL${waitReplicas > 0 ? ` with ?waitReplicas=${waitReplicas}` : ' without waitReplicas'}. Faults: our connections killed on every node (\`CLIENT KILL TYPE normal\`), 500 slots moved to another primary under load (\`redis-cli --cluster reshard\`: MOVED, ASK, TRYAGAIN), and a primary SIGKILLed so that its replica takes over, the old primary then restarted (it rejoins as a replica). Recovery is timed from the kill. ${
            waitReplicas > 0
              ? `With waitReplicas, a write is acknowledged only once a replica has it: until the old primary is back as the new primary's replica, writes to its slots are refused (503), never acknowledged and then lost.`
              : `Without waitReplicas, Redis acknowledges a write before its replica has it: a write acknowledged by the primary just before its SIGKILL, and not yet received by the replica, is lost in the failover. This run lost ${summary.acknowledgedWritesLost} (on loopback the replica trails by well under a millisecond; across machines the window is wider).`
          }`,
          '',
        ]
      : []),
    ...(redis
      ? [
          '## Redis engine',
          '',
          `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill -- --engine redis\` (Node ${process.version}, redis-server from test/redis-server.ts on loopback, AOF with appendfsync always, ${summary.durationS.toFixed(0)} s).`,
          `The same example server, loader and checks, with \`DATABASE\` a redis:// URL. The SQLite lock faults are replaced by the server's own: our connections killed with \`CLIENT KILL TYPE normal\`, Redis SIGKILLed and restarted on its AOF${quick ? '' : ', and Redis down for 7 s (past requestTimeout)'}. One Redis server, no replica: a failover is not part of this drill.`,
          '',
        ]
      : []),
    ...(standby
      ? [
          `## PostgreSQL failover, ${ha} standby`,
          '',
          `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill -- --engine postgres --ha ${ha}\` (Node ${process.version}, a primary and a streaming standby from test/postgres-server.ts on loopback, ${ha === 'sync' ? "synchronous_standby_names '*'" : 'asynchronous replication'}, ${summary.durationS.toFixed(0)} s).`,
          `The example server on the two-host URL. Faults: our backends terminated; the primary SIGKILLed and the standby promoted at once; the old primary rebuilt as a standby of the new one (pg_basebackup) on its port, first in the host list, and our connections dropped${quick ? '' : '; then the same again the other way (a failback)'}. Recovery is timed from the kill (from the drop for the rebuilt standby).`,
          '',
        ]
      : []),
    ...(bouncer
      ? [
          '## PostgreSQL through PgBouncer',
          '',
          `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill -- --engine postgres --pgbouncer\` (Node ${process.version}, PgBouncer 1.18 in transaction mode in front of PostgreSQL, server_login_retry = 1, URL ?pgbouncer=true, ${summary.durationS.toFixed(0)} s). Faults: the server connections terminated behind PgBouncer, the server restarted (-m fast), PgBouncer SIGKILLed and restarted.`,
          '',
        ]
      : []),
    ...(postgres && !standby && !bouncer
      ? [
          '## PostgreSQL engine',
          '',
          `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill -- --engine postgres\` (Node ${process.version}, PostgreSQL from test/postgres-server.ts on loopback, ${summary.durationS.toFixed(0)} s).`,
          `The same example server, loader and checks, with \`DATABASE\` a postgres:// URL. The SQLite lock faults are replaced by the server's own: our backends terminated with pg_terminate_backend, the server restarted with \`pg_ctl restart -m fast\`, crashed with \`-m immediate\` (recovery from its WAL at the next start) and brought back${quick ? '' : ', and stopped for 7 s (past requestTimeout)'}.`,
          '',
        ]
      : redis || cluster || standby || bouncer
        ? []
        : [
            '# Reliability: fault drills',
            '',
            `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run drill\` (Node ${process.version}, ${summary.durationS.toFixed(0)} s).`,
          ]),
    ...(postgres || redis || cluster
      ? []
      : [
          `The example server (\`examples/server.ts\`, default settings, its admin routes on) runs as a child process; a loader keeps read-modify-write counters in ${summary.sessions} sessions with ${LOOPS} concurrent loops and records every acknowledged value; clients log out now and then. While it runs: the store actor is killed ${faults.filter((f) => f.name.startsWith('store kill')).length} times at random moments; the cleaner is killed during long sweeps of a planted backlog (${quick ? 1 : 2}, of ${quick ? '60,000' : '200,000'} dead sessions); SIGUSR2 arrives in bursts; the whole server is SIGKILLed twice and restarted on the same file; another process holds SQLite's write lock (${quick ? '1.5 s' : '1.5 s, then 7 s: past requestTimeout'}); finally the store actor is killed past the restart intensity. Then every session is checked against the loader's record.`,
          '',
        ]),
    '| figure | value |',
    '| --- | ---: |',
    `| requests sent | ${summary.requestsSent} |`,
    `| failed requests | ${Object.values(summary.failed).reduce((sum, byKind) => sum + Object.values(byKind).reduce((a, b) => a + b, 0), 0)} (by fault below) |`,
    `| acknowledged writes | ${summary.acknowledgedWrites} |`,
    `| **acknowledged writes lost** | **${summary.acknowledgedWritesLost}** |`,
    `| stored but never acknowledged (reply lost to a fault) | ${summary.storedButUnacknowledged} |`,
    `| sessions logged out | ${summary.loggedOut} |`,
    `| **sessions resurrected after logout** | **${summary.resurrectedAfterLogout}** |`,
    `| recovery time after a fault, p50 / max | ${summary.recoveryMs.p50} / ${summary.recoveryMs.max} ms |`,
    `| past the intensity: server exit code, time to exit | ${summary.supervisorGaveUp.exitCode}, ${summary.supervisorGaveUp.exitedWithinMs} ms |`,
    '',
    '| fault | recovery (first acknowledged write sent after it) | failed requests during it, by status or error |',
    '| --- | ---: | --- |',
    ...summary.faults.map(
      (f) =>
        `| ${f.name} | ${f.recoveryMs === null ? 'none' : `${f.recoveryMs} ms`} | ${
          Object.entries(summary.failed[f.name] ?? {})
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ') || 'none'
        } |`,
    ),
    `| (steady load, between faults) | | ${
      Object.entries(summary.failed['steady load'] ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || 'none'
    } |`,
    '',
    'Failed requests are the honest price of a fault (a `503` while the store is unavailable, connection errors while the server is down); none of them was acknowledged, so none counts as stored. "Recovery" is the time from injecting a fault to the next acknowledged write; for a SIGKILL it includes starting a new server process.',
    ...(postgres || redis || cluster
      ? []
      : [
          '',
          'Why a held lock instead of a read-only file or a full disk: the drill runs as root here, and root ignores file permissions; a size-limited filesystem needs a mount the sandbox may refuse. A lock held by another process is a real-world fault (a backup, a migration) that can be injected safely in a temp dir.',
        ]),
  ];
  const report = `${lines.join('\n')}\n`;
  process.stdout.write(report);
  if (!quick) {
    // One file, a section per engine (SQLite first, then PostgreSQL, then Redis): each run replaces its own.
    const file = join(ROOT, 'docs', 'reliability.md');
    const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const at = (heading: string) => {
      const i = before.indexOf(heading);
      return i === -1 ? before.length : i;
    };
    // Sections in this order; a run replaces its own and keeps the others.
    const headings = [
      '## PostgreSQL engine',
      '## PostgreSQL failover, sync standby',
      '## PostgreSQL failover, async standby',
      '## PostgreSQL through PgBouncer',
      '## Redis engine',
      '## Redis Cluster engine, waitReplicas=0',
      '## Redis Cluster engine, waitReplicas=1',
    ];
    const starts = headings.map((heading) => at(`${heading}\n`));
    const end = (i: number) => Math.min(before.length, ...starts.filter((one) => one > starts[i]));
    const parts = [
      before.slice(0, Math.min(...starts)).trimEnd(),
      ...headings.map((_, i) => (starts[i] === before.length ? '' : before.slice(starts[i], end(i)).trimEnd())),
    ];
    const mine = standby ? (ha === 'sync' ? 2 : 3) : bouncer ? 4 : postgres ? 1 : redis ? 5 : cluster ? (waitReplicas === 0 ? 6 : 7) : 0;
    parts[mine] = report.trimEnd();
    writeFileSync(file, `${parts.filter((part) => part !== '').join('\n\n')}\n`);
  }
}
