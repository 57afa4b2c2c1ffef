// PostgreSQL high availability, on servers of this suite's own: a multi-host
// URL (libpq's syntax) whose hosts are down, read-only or standbys; a server
// that turns read-only under a running app; and a batch whose COMMIT reply
// was lost across a promotion, where the new primary reuses its transaction
// id (the replay check must read the batch's mark, not pg_xact_status).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearStore, ConfigError, dropStore, setupStore, startSessionApp, StoreUnavailableError, type SessionApp } from '../src/index.ts';
import { startPostgres, startStandby, type PostgresServer } from './postgres-server.ts';
import { adminQuery } from './engines.ts';
import { runScript, sleep } from './helpers.ts';

// The CLI as a user runs it: package.json's bin (built by npm test).
const root = join(import.meta.dirname, '..');
const bin = join(
  root,
  (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['supervised-sessions'],
);
const runCli = (args: string[]) => runScript(bin, args, { timeoutMs: 30_000 });

// The lost-COMMIT-reply fault (store/fault-hook.ts), set before any app starts.
const scratch = mkdtempSync(join(tmpdir(), 'ss-ha-'));
const LOSE_REPLY = join(scratch, 'lose-reply');
process.env.SUPERVISED_SESSIONS_LOSE_COMMIT_REPLY = LOSE_REPLY;

const servers: PostgresServer[] = [];
let tables = 0;

async function server(settings: Record<string, string | number> = {}): Promise<PostgresServer> {
  const one = await startPostgres({ settings });
  servers.push(one);
  return one;
}

test.after(() => {
  for (const one of servers) one.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

/** A primary and a streaming standby of it (stopped with the others at the end). */
async function pair(options: { sync: boolean }): Promise<{ primary: PostgresServer; standby: PostgresServer }> {
  const primary = await server();
  const standby = await startStandby(primary, options);
  servers.push(standby);
  return { primary, standby };
}

/** A port nothing listens on (a host that is down). */
async function deadPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const hosts = (...ports: number[]) => `postgres://postgres@${ports.map((port) => `127.0.0.1:${port}`).join(',')}/postgres`;

async function rows(at: PostgresServer, table: string): Promise<number | null> {
  const { rows: found } = await adminQuery('SELECT to_regclass($1) IS NOT NULL AS there', [`"${table}"`], at.url);
  if (!found[0].there) return null;
  return Number((await adminQuery(`SELECT count(*)::int AS n FROM "${table}"`, [], at.url)).rows[0].n);
}

async function withApp(database: string, config: { requestTimeout?: number }, body: (app: SessionApp, table: string) => Promise<void>) {
  const table = `ha${++tables}`;
  const app = await startSessionApp({ database, table, sweepSignal: false, cleanerInterval: 3600, ...config });
  try {
    await body(app, table);
  } finally {
    await app.stop();
  }
}

test('multi-host URLs are checked before any worker starts: a ConfigError names what is wrong, never the password', async () => {
  const cases: Array<[string, RegExp]> = [
    ['postgres://u:hunter2@a:5432,b:5432/db?target_session_attrs=standby', /target_session_attrs=standby is not supported/],
    ['postgres://u:hunter2@a:5432,,b:5432/db', /empty entry/],
    ['postgres://u:hunter2@a:5432,b:70000/db', /the port of host 2 of 2 is not a number/],
    ['postgres://u:hunter2@/db?host=a,b', /several hosts go in the URL itself/],
    ['postgres://u:hunter2@a,b/db?pgbouncer=yes', /pgbouncer=yes is not true or false/],
    ['postgres://u:hunter2@a,b/db?maxConnectionLifetime=0', /maxConnectionLifetime=0 is not a number of seconds above 0/],
    ['postgres://u:hunter2@a/db?application_name=50%off', /malformed %-escape/],
  ];
  for (const [database, pattern] of cases) {
    const error = await startSessionApp({ database }).catch((e: unknown) => e);
    assert.instance(error, ConfigError, database);
    assert.is((error as ConfigError).key, 'database');
    assert.match((error as Error).message, pattern);
    assert.not.match((error as Error).message, /hunter2/);
  }
  // A password holding an unencoded '#', '/' or '?' (a malformed URL): no part of it is ever echoed.
  for (const database of [
    'postgres://u:pw1#frag@a:5432,b:70000/db',
    'postgres://u:pw2/frag@a:99999/db',
    'postgres://u:pw3?frag@a,b/db',
    'postgres://u:pw4#frag@a,,b/db',
  ]) {
    const error = await startSessionApp({ database, requestTimeout: 300 }).catch((e: unknown) => e);
    assert.instance(error, Error, database);
    assert.not.match((error as Error).message, /pw\d|frag/, (error as Error).message);
  }
  // Every host down: a StoreUnavailableError within about requestTimeout, the password masked.
  const started = Date.now();
  const down = await startSessionApp({
    database: `postgres://u:hunter2@127.0.0.1:${await deadPort()},127.0.0.1:${await deadPort()}/db`,
    requestTimeout: 600,
    sweepSignal: false,
  }).catch((e: unknown) => e);
  assert.instance(down, StoreUnavailableError);
  assert.not.match((down as Error).message, /hunter2/);
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
});

test('a multi-host URL: a host that is down and one that is read-only are skipped, by the store, the cleaner, the helpers and the CLI', async () => {
  const readOnly = await server({ default_transaction_read_only: 'on' });
  const writable = await server();
  const url = hosts(await deadPort(), readOnly.port, writable.port);
  await withApp(url, {}, async (app, table) => {
    const id = await app.store.put(null, { a: 1 });
    assert.ok(id);
    assert.equal(await app.store.get(id!), { a: 1 });
    assert.is(await rows(writable, table), 1, 'the session is on the writable host');
    assert.is(await rows(readOnly, table), null, 'nothing was set up on the read-only host');
    const report = await app.sweep();
    assert.is(report.skipped, false);
    // The helpers (setup, clear) and the CLI, on the same URL.
    await setupStore({ database: url, table: `${table}_b` });
    assert.is(await rows(writable, `${table}_b`), 0);
    const cli = await runCli(['stats', '--database', url, '--table', table]);
    assert.is(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^live: 1$/m);
    await clearStore({ database: url, table });
    assert.is(await rows(writable, table), 0);
  });
});

test('target_session_attrs=any takes the first host that answers: writes on a read-only one fail with StoreUnavailableError after requestTimeout', async () => {
  const readOnly = await server();
  const writable = await server();
  const table = `ha${++tables}`;
  await setupStore({ database: readOnly.url, table });
  await adminQuery('ALTER SYSTEM SET default_transaction_read_only = on', [], readOnly.url);
  await adminQuery('SELECT pg_reload_conf()', [], readOnly.url);
  const url = `${hosts(readOnly.port, writable.port)}?target_session_attrs=any`;
  const app = await startSessionApp({ database: url, table, autoSetup: false, requestTimeout: 800, cleanerInterval: 3600 });
  try {
    const started = Date.now();
    const failed = await app.store.put(null, { a: 1 }).catch((error: unknown) => error);
    assert.instance(failed, StoreUnavailableError);
    // The engine names the cause (read-only) unless the caller's own requestTimeout ran out first.
    assert.match((failed as Error).message, /read-only|requestTimeout/, (failed as Error).message);
    assert.ok(Date.now() - started >= 700, `failed after requestTimeout: ${Date.now() - started} ms`);
    assert.is(await rows(writable, table), null, 'the second host was not used');
  } finally {
    await app.stop();
  }
});

test('a server that turns read-only under a running app (a demoted primary) is left for the next host: no call fails', async () => {
  const first = await server();
  const second = await server();
  const url = hosts(first.port, second.port);
  await withApp(url, { requestTimeout: 5000 }, async (app, table) => {
    await setupStore({ database: second.url, table });
    const before = await app.store.put(null, { on: 'first' });
    assert.is(await rows(first, table), 1);
    await adminQuery('ALTER SYSTEM SET default_transaction_read_only = on', [], first.url);
    await adminQuery('SELECT pg_reload_conf()', [], first.url);
    await sleep(300);
    // A read batch notices too (it would otherwise read the old server's data).
    assert.is(await app.store.get(before!), null, 'the read went to the second host, which never had this session');
    const after = await app.store.put(null, { on: 'second' });
    assert.ok(after);
    assert.equal(await app.store.get(after!), { on: 'second' });
    assert.is(await rows(second, table), 1, 'the write landed on the second host');
    assert.is(await rows(first, table), 1, 'nothing more on the read-only one');
    assert.is(app.status().children.store.restarts, 0);
  });
});

test('?maxConnectionLifetime=S: once the first host is back (a failback), the store and the cleaner move back to it; without it they stay where they are', async () => {
  const first = await server();
  const second = await server();
  for (const table of ['drift_on', 'drift_off']) {
    await setupStore({ database: first.url, table });
    await setupStore({ database: second.url, table });
  }
  first.stop('fast');
  const both = hosts(first.port, second.port);
  const drifting = await startSessionApp({ database: `${both}?maxConnectionLifetime=0.5`, table: 'drift_on', cleanerInterval: 3600 });
  const staying = await startSessionApp({ database: both, table: 'drift_off', cleanerInterval: 3600 });
  try {
    for (const app of [drifting, staying]) assert.ok(await app.store.put(null, { while: 'first down' }));
    assert.is(await rows(second, 'drift_on'), 1);
    assert.is(await rows(second, 'drift_off'), 1);
    await first.startAsync();
    await sleep(700);
    for (const app of [drifting, staying]) assert.ok(await app.store.put(null, { while: 'first back' }));
    assert.is(await rows(first, 'drift_on'), 1, 'the store moved back to the first host');
    assert.is(await rows(first, 'drift_off'), 0, 'without the parameter it stays on the second');
    assert.is((await drifting.sweep()).skipped, false);
  } finally {
    await drifting.stop();
    await staying.stop();
  }
});

test('the batch marks table: a least-privileged role works with the grants docs/postgres.md lists; a missing table or grant is refused at start, naming it; a table of that name that is not ours is never used or dropped', async () => {
  const one = await server();
  await setupStore({ database: one.url, table: 'lp' });
  await adminQuery(`CREATE ROLE app_min LOGIN`, [], one.url);
  await adminQuery(`GRANT SELECT, INSERT, UPDATE, DELETE ON lp TO app_min`, [], one.url);
  await adminQuery(`GRANT SELECT, INSERT, DELETE ON lp_batches TO app_min`, [], one.url);
  const asApp = `postgres://app_min@127.0.0.1:${one.port}/postgres`;
  const config = { database: asApp, table: 'lp', autoSetup: false, cleanerInterval: 3600, requestTimeout: 2000 };
  const app = await startSessionApp(config);
  try {
    const id = (await app.store.put(null, { a: 1 }))!;
    assert.is(await app.store.patch(id, { set: { b: 2 } }), true);
    const { rows: marks } = await adminQuery('SELECT count(*)::int AS n FROM lp_batches', [], one.url);
    assert.ok(marks[0].n >= 2, 'each write batch left its mark');
    // A mark older than any replay window (5 min + 2 x requestTimeout) goes with the sweep; the fresh ones stay.
    await adminQuery(
      `INSERT INTO lp_batches (id, at) VALUES (gen_random_uuid(), (extract(epoch from now()) * 1000)::bigint - 3600000)`,
      [],
      one.url,
    );
    assert.is((await app.sweep()).skipped, false);
    const { rows: left } = await adminQuery('SELECT count(*)::int AS n FROM lp_batches', [], one.url);
    assert.is(left[0].n, marks[0].n, 'the old mark was deleted by the cleaner, the fresh ones kept');
  } finally {
    await app.stop();
  }
  // A role granted nothing on the marks table is told to grant, not to run setup (either autoSetup).
  await adminQuery(`CREATE ROLE app_none LOGIN`, [], one.url);
  await adminQuery(`GRANT SELECT, INSERT, UPDATE, DELETE ON lp TO app_none`, [], one.url);
  for (const autoSetup of [false, true]) {
    const none = await startSessionApp({ ...config, autoSetup, database: `postgres://app_none@127.0.0.1:${one.port}/postgres` }).catch(
      (e: unknown) => e,
    );
    assert.instance(none, ConfigError, String(none));
    assert.match((none as Error).message, /needs SELECT, INSERT and DELETE on "lp_batches"/);
  }
  await adminQuery(`REVOKE INSERT ON lp_batches FROM app_min`, [], one.url);
  const ungranted = await startSessionApp(config).catch((e: unknown) => e);
  assert.instance(ungranted, ConfigError);
  assert.match((ungranted as Error).message, /SELECT, INSERT and DELETE on "lp_batches"/);
  await adminQuery(`DROP TABLE lp_batches`, [], one.url);
  const missing = await startSessionApp(config).catch((e: unknown) => e);
  assert.instance(missing, Error);
  assert.match((missing as Error).message, /batch marks table "lp_batches" .* does not exist.*supervised-sessions setup/);
  // Someone else's table named like our marks table.
  await adminQuery(`CREATE TABLE theirs_batches (x int)`, [], one.url);
  await adminQuery(`INSERT INTO theirs_batches VALUES (1)`, [], one.url);
  const refused = await setupStore({ database: one.url, table: 'theirs' }).catch((e: unknown) => e);
  assert.instance(refused, Error);
  assert.match((refused as Error).message, /"theirs_batches" exists with other columns/);
  // Ours set up, then that name taken by another table: dropping the store leaves it alone.
  await setupStore({ database: one.url, table: 'mine' });
  await adminQuery(`DROP TABLE mine_batches`, [], one.url);
  await adminQuery(`CREATE TABLE mine_batches (x int)`, [], one.url);
  await adminQuery(`INSERT INTO mine_batches VALUES (1)`, [], one.url);
  await dropStore({ database: one.url, table: 'mine' });
  assert.is(await rows(one, 'mine'), null, 'the session table is dropped');
  assert.is(await rows(one, 'mine_batches'), 1, 'their table is untouched');
  // Ours are dropped with the session table.
  await setupStore({ database: one.url, table: 'ours' });
  assert.is(await rows(one, 'ours_batches'), 0);
  await dropStore({ database: one.url, table: 'ours' });
  assert.is(await rows(one, 'ours_batches'), null);
});

test('a batch whose COMMIT reply was lost, then a failover to an asynchronous standby that never got it and reuses its transaction id: the batch is replayed, not taken as committed', async () => {
  const { primary, standby } = await pair({ sync: false });
  const url = hosts(primary.port, standby.port);
  await withApp(url, { requestTimeout: 15_000 }, async (app, table) => {
    const id = (await app.store.put(null, { v: 0 }))!;
    // The standby has everything so far; then it stops receiving WAL.
    await waitReplayed(primary, standby);
    standby.stop('fast');
    // The next write commits on the primary, and its reply is "lost" (fault hook).
    writeFileSync(LOSE_REPLY, 'patch');
    const write = app.store.patch(id, { set: { v: 1 } });
    const lost = `${LOSE_REPLY}.lost`;
    for (let i = 0; i < 500 && !existsSync(lost); i++) await sleep(10);
    assert.ok(existsSync(lost), 'the fault hook fired');
    // The next transaction id the primary would hand out (asking assigns none): that batch's is below it.
    const { rows: xids } = await adminQuery('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x', [], primary.url);
    const next = BigInt(xids[0].x);
    // The machine is lost; the standby is promoted without that batch.
    primary.kill();
    await standby.startAsync();
    await standby.promote();
    // The new primary hands out the same transaction ids again, and commits them.
    await adminQuery('CREATE TABLE filler (x int)', [], standby.url);
    for (;;) {
      const { rows: at } = await adminQuery('INSERT INTO filler VALUES (1) RETURNING pg_current_xact_id()::text AS x', [], standby.url);
      if (BigInt(at[0].x) >= next) break;
    }
    // The premise: the transaction id that batch had on the old primary is a committed one on the new primary.
    const { rows: status } = await adminQuery('SELECT pg_xact_status($1::text::xid8) AS s', [String(next - 1n)], standby.url);
    assert.is(status[0].s, 'committed');
    assert.is(await rows(standby, table), 1);
    rmSync(lost);
    assert.is(await write, true, 'the write is acknowledged');
    assert.equal(await app.store.get(id), { v: 1 }, 'and it is on the new primary');
    const { rows: stored } = await adminQuery(`SELECT data FROM "${table}"`, [], standby.url);
    assert.equal(stored[0].data, { v: 1 });
  });
});

test('asynchronous replication: a write PostgreSQL acknowledged and the standby never received is lost by the failover (PostgreSQL itself loses it; this is what sync replication is for)', async () => {
  const { primary, standby } = await pair({ sync: false });
  await withApp(hosts(primary.port, standby.port), { requestTimeout: 10_000 }, async (app) => {
    const id = (await app.store.put(null, { v: 0 }))!;
    await waitReplayed(primary, standby);
    standby.stop('fast');
    // Acknowledged by the primary alone.
    assert.is(await app.store.patch(id, { set: { v: 1 } }), true);
    primary.kill();
    await standby.startAsync();
    await standby.promote();
    assert.equal(await app.store.get(id), { v: 0 }, 'the acknowledged write is gone with the old primary');
  });
});

test('synchronous replication: with the standby away, a write is never acknowledged (a StoreUnavailableError at requestTimeout), and after the failover the store holds exactly what was acknowledged', async () => {
  const { primary, standby } = await pair({ sync: true });
  await withApp(hosts(primary.port, standby.port), { requestTimeout: 1500 }, async (app) => {
    const id = (await app.store.put(null, { v: 0 }))!;
    await waitReplayed(primary, standby);
    standby.stop('fast');
    const started = Date.now();
    const failed = await app.store.patch(id, { set: { v: 1 } }).catch((error: unknown) => error);
    assert.instance(failed, StoreUnavailableError);
    assert.ok(Date.now() - started >= 1400, `failed at requestTimeout: ${Date.now() - started} ms`);
    primary.kill();
    await standby.startAsync();
    await standby.promote();
    assert.equal(await app.store.get(id), { v: 0 }, 'the write that was refused is not there');
    assert.is(await app.store.patch(id, { set: { v: 2 } }), true, 'the new primary takes writes');
    assert.equal(await app.store.get(id), { v: 2 });
  });
});

for (const how of ['pg_cancel_backend', 'pg_terminate_backend'] as const) {
  test(`synchronous replication: a COMMIT whose wait for the standby ends early (${how}: committed on the primary alone) is not acknowledged, not even by the replay`, async () => {
    const { primary, standby } = await pair({ sync: true });
    await withApp(hosts(primary.port, standby.port), { requestTimeout: 4000 }, async (app) => {
      const id = (await app.store.put(null, { v: 0 }))!;
      await waitReplayed(primary, standby);
      standby.stop('fast');
      const write = app.store.patch(id, { set: { v: 1 } }).catch((error: unknown) => error);
      // Our backend waits for the standby at COMMIT (statement_timeout does not cover that wait).
      let ended = 0;
      for (let i = 0; i < 300 && ended === 0; i++) {
        const { rows: found } = await adminQuery(
          `SELECT count(${how}(pid))::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND application_name LIKE 'supervised-sessions%'`,
          [],
          primary.url,
        );
        ended = found[0].n;
        if (ended === 0) await sleep(10);
      }
      assert.is(ended, 1, 'the COMMIT was waiting for the standby');
      // Cancelled: PostgreSQL answers COMMIT with a warning. Terminated: the
      // connection goes, and the replay finds the batch committed — and
      // confirms it on the standby first, which is away.
      const failed = await write;
      assert.instance(failed, StoreUnavailableError, String(failed));
      if (how === 'pg_cancel_backend')
        assert.match((failed as Error).message, /no synchronous standby confirmed it/, (failed as Error).message);
      primary.kill();
      await standby.startAsync();
      await standby.promote();
      assert.equal(await app.store.get(id), { v: 0 }, 'committed on the old primary alone, and never acknowledged');
    });
  });
}

async function waitReplayed(primary: PostgresServer, standby: PostgresServer): Promise<void> {
  const { rows: at } = await adminQuery('SELECT pg_current_wal_lsn()::text AS lsn', [], primary.url);
  for (let i = 0; i < 500; i++) {
    const { rows: done } = await adminQuery('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [at[0].lsn], standby.url);
    if (done[0].ok) return;
    await sleep(10);
  }
  throw new Error('the standby did not catch up');
}

test.run();
