// The PostgreSQL engine alone (docs/postgres.md): what the contract suites, run on both engines, cannot show —
// URLs and passwords, the schema race, the helpers and the CLI on a URL, the
// cleaner's lock, group commit, and connections that die under the store.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  startSessionApp,
  setupStore,
  clearStore,
  dropStore,
  ConfigError,
  StoreUnavailableError,
  TableNotExistsError,
  TableExistsError,
  type SessionAppConfig,
  type SessionApp,
} from '../src/index.ts';
import { runScript, sleep } from './helpers.ts';
import { adminQuery, postgresDatabase } from './engines.ts';
import { closePostgres, countLive, LIVE_COUNT_TIMEOUT_MS } from '../src/engines/postgres/sweeper.ts';
import { expiryPolicy } from '../src/store/expiry.ts';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);
// The lost-COMMIT-reply fault hook (src/store/fault-hook.ts): armed only while
// this file exists; every store actor this suite starts reads the variable.
const LOSE_REPLY = join(tmpdir(), `supervised-sessions-lose-reply-${process.pid}`);
process.env.SUPERVISED_SESSIONS_LOSE_COMMIT_REPLY = LOSE_REPLY;
// The same for a connection lost while the server is still inside the transaction.
const DROP_INSIDE = join(tmpdir(), `supervised-sessions-drop-inside-${process.pid}`);
process.env.SUPERVISED_SESSIONS_DROP_IN_TRANSACTION = DROP_INSIDE;
const bin = join(import.meta.dirname, '..', 'bin', 'supervised-sessions.js');
let tables = 0;
const freshTable = () => `pg${++tables}_${Math.random().toString(36).slice(2, 8)}`;

async function withPgApp(
  config: SessionAppConfig,
  body: (app: SessionApp, database: string, table: string) => Promise<void>,
): Promise<void> {
  const database = await postgresDatabase();
  const table = config.table ?? freshTable();
  const app = await startSessionApp({ database, table, sweepSignal: false, cleanerInterval: 3600, ...config });
  try {
    await body(app, database, table);
  } finally {
    await app.stop();
  }
}

/** Rows planted straight into the table, `ageMs` old by the server's clock. */
async function plant(database: string, table: string, n: number, ageMs: number): Promise<void> {
  await adminQuery(
    `INSERT INTO "${table}" (sid_hash, data, created_at, touched_at)
    SELECT sha256(gen_random_uuid()::text::bytea), '{"planted":true}', t, t
    FROM generate_series(1, $1) AS i, (SELECT (extract(epoch from now()) * 1000)::bigint - $2::bigint AS t) AS at`,
    [n, ageMs],
    database,
  );
}

const rowCount = async (database: string, table: string) =>
  Number((await adminQuery(`SELECT count(*) AS n FROM "${table}"`, [], database)).rows[0].n);

function withPassword(database: string, password: string): string {
  const url = new URL(database);
  url.username = 'postgres';
  url.password = password;
  return url.toString();
}

// ── the live count after a sweep ─────────────────────────────────────────

test('the live count after a sweep is bounded: on a table another session holds locked it gives up (null) in about 1 s, leaves its connection usable, and counts once the lock is gone', async () => {
  const database = await postgresDatabase();
  const table = freshTable();
  await setupStore({ database, table });
  await plant(database, table, 5, 0);
  const policy = expiryPolicy({ maxAge: 3600, timestamp: 'relative', maxLifetime: null });
  const task = { database, table, policy, timeoutMs: 5000 };
  const locker = new pg.Client({ connectionString: database });
  await locker.connect();
  try {
    assert.is(await countLive(task), 5);
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`);
    const started = performance.now();
    assert.is(await countLive(task), null, 'gave up');
    const took = performance.now() - started;
    assert.ok(took >= LIVE_COUNT_TIMEOUT_MS * 0.9 && took < LIVE_COUNT_TIMEOUT_MS + 2000, `gave up after ${Math.round(took)} ms`);
    await locker.query('ROLLBACK');
    // The same connection, not left inside a transaction: the next count works.
    const states = (
      await adminQuery(
        `SELECT state FROM pg_stat_activity WHERE application_name = 'supervised-sessions cleaner' AND datname = current_database()`,
        [],
        database,
      )
    ).rows.map((r) => r.state);
    assert.ok(states.length >= 1 && states.every((state) => state === 'idle'), JSON.stringify(states));
    assert.is(await countLive(task), 5);
  } finally {
    await locker.end();
    await closePostgres();
  }
});

// ── config and URLs ──────────────────────────────────────────────────────

test('durability other than the default with a PostgreSQL URL is a ConfigError; the URL is never printed back with its password', async () => {
  const database = withPassword(await postgresDatabase(), 'hunter2-secret');
  const error = await startSessionApp({ database, durability: 'full' }).catch((e: unknown) => e);
  assert.instance(error, ConfigError);
  assert.is((error as ConfigError).key, 'durability');
  assert.match((error as Error).message, /synchronous_commit/);
  const unparsable = await startSessionApp({ database: 'postgres://user:hunter2-secret@[bad/db' }).catch((e: unknown) => e);
  assert.instance(unparsable, ConfigError);
  assert.is((unparsable as ConfigError).key, 'database');
  assert.not.match((unparsable as Error).message, /hunter2/);
  assert.match((unparsable as Error).message, /\*\*\*/);
});

test('a database that does not exist: ConfigError naming database, password masked; a server that is down: StoreUnavailableError within requestTimeout', async () => {
  const url = new URL(withPassword(await postgresDatabase(), 'hunter2-secret'));
  url.pathname = '/no_such_database';
  const missing = await startSessionApp({ database: url.toString(), sweepSignal: false }).catch((e: unknown) => e);
  assert.instance(missing, ConfigError);
  assert.is((missing as ConfigError).key, 'database');
  assert.match((missing as Error).message, /no_such_database/);
  assert.not.match((missing as Error).message, /hunter2/);
  // The command line: a missing database is an error met on the database (1), like a missing SQLite file, not a usage error (2).
  const cli = await runScript(bin, ['stats', '--database', url.toString(), '--max-age', '60', '--timestamp', 'relative'], {
    timeoutMs: 30_000,
  });
  assert.is(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /^supervised-sessions stats: .*no_such_database/);
  assert.not.match(cli.stderr, /hunter2/);

  // A port nobody listens on.
  const down = 'postgres://postgres:hunter2-secret@127.0.0.1:9/app';
  const started = Date.now();
  const error = await startSessionApp({ database: down, sweepSignal: false, requestTimeout: 800 }).catch((e: unknown) => e);
  assert.instance(error, StoreUnavailableError);
  assert.not.match((error as Error).message, /hunter2/);
  assert.ok(Date.now() - started < 5000, `gave up within about requestTimeout: ${Date.now() - started} ms`);
});

test("times come from the server: a session is live or dead by the server clock, not the app's", () =>
  withPgApp({ maxAge: 60, touchAfter: 0 }, async (app, database, table) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const { rows } = await adminQuery(
      `SELECT created_at, touched_at, (extract(epoch from now()) * 1000)::bigint AS now FROM "${table}"`,
      [],
      database,
    );
    assert.ok(Math.abs(Number(rows[0].now) - Number(rows[0].touched_at)) < 5000);
    // Age it by the server's measure only: the app's clock has no say.
    await adminQuery(`UPDATE "${table}" SET touched_at = touched_at - 61000`, [], database);
    assert.is(await app.store.get(id), null, 'dead by the server clock');
  }));

test('a password is masked in every message: an unencoded @ in it, a NUL in the URL, sslpassword', async () => {
  for (const database of ['postgres://u:p@ss@h:99999/db', 'postgres://u:p@ss\u0000word@h/db', 'postgres://u@[bad/db?sslpassword=p@ss']) {
    const error = await startSessionApp({ database }).catch((e: unknown) => e);
    assert.instance(error, ConfigError, database);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a password holding U+0000 must not be echoed
    assert.not.match((error as Error).message, /p@ss|ss@h|ss\u0000/, (error as Error).message);
  }
});

// ── schema ───────────────────────────────────────────────────────────────

test('ten processes starting at once on a missing table: every one starts (the creation is under an advisory lock)', async () => {
  const database = await postgresDatabase();
  const table = freshTable();
  const starts = await Promise.all(
    Array.from({ length: 10 }, () => runScript(fixture('start-app.ts'), [database, table], { timeoutMs: 60_000 })),
  );
  for (const start of starts) assert.is(start.stdout.trim(), 'ok', start.stdout + start.stderr);
  const { rows } = await adminQuery(`SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname`, [table], database);
  assert.equal(
    rows.map((row: { indexname: string }) => row.indexname),
    [
      `${table}_app_created`,
      `${table}_created_at`,
      `${table}_own_created`,
      `${table}_own_touched`,
      `${table}_owner`,
      `${table}_pkey`,
      `${table}_touched_at`,
    ],
  );
});

test('a table without the owner column is upgraded in place by ten processes at once: every session kept; autoSetup false refuses it', async () => {
  const database = await postgresDatabase();
  const table = freshTable();
  await adminQuery(
    `CREATE TABLE "${table}" (sid_hash bytea PRIMARY KEY, data jsonb NOT NULL, created_at bigint NOT NULL, touched_at bigint NOT NULL)`,
    [],
    database,
  );
  await plant(database, table, 50, 0);
  const refused = await startSessionApp({ database, table, autoSetup: false, sweepSignal: false }).catch((e: unknown) => e);
  assert.instance(refused, TableNotExistsError);
  assert.match((refused as Error).message, /supervised-sessions setup/);
  const starts = await Promise.all(
    Array.from({ length: 10 }, () => runScript(fixture('start-app.ts'), [database, table], { timeoutMs: 60_000 })),
  );
  for (const start of starts) assert.is(start.stdout.trim(), 'ok', start.stdout + start.stderr);
  assert.is(await rowCount(database, table), 50);
  const app = await startSessionApp({ database, table, autoSetup: false, sweepSignal: false });
  try {
    assert.is(await app.store.count(), 50);
    const id = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
    assert.is((await app.store.sessionsOf('ada')).length, 1);
    assert.ok(await app.store.get(id));
  } finally {
    await app.stop();
  }
});

test('a 63-character table name gets its six indexes, each under a name of its own', async () => {
  const database = await postgresDatabase();
  const table = `t${'x'.repeat(56)}${Math.random().toString(36).slice(2, 8)}`;
  assert.is(table.length, 63);
  await setupStore({ database, table });
  const { rows } = await adminQuery(`SELECT indexname FROM pg_indexes WHERE tablename = $1`, [table], database);
  assert.is(rows.length, 7, JSON.stringify(rows));
  assert.is(new Set(rows.map((row: { indexname: string }) => row.indexname)).size, 7, JSON.stringify(rows));
  await dropStore({ database, table });
});

test('helpers on a URL: setupStore is idempotent, refuses a table of another shape; clearStore and dropStore; missing table is nothing to do', async () => {
  const database = await postgresDatabase();
  const table = freshTable();
  await setupStore({ database, table });
  await setupStore({ database, table });
  const app = await startSessionApp({ database, table, autoSetup: false, sweepSignal: false });
  await app.store.put(null, { a: 1 });
  await app.stop();
  await clearStore({ database, table });
  assert.is(await rowCount(database, table), 0);
  await dropStore({ database, table });
  await dropStore({ database, table });
  await clearStore({ database, table });
  const exists = await adminQuery(`SELECT to_regclass($1) AS t`, [`"${table}"`], database);
  assert.is(exists.rows[0].t, null);
  const other = freshTable();
  await adminQuery(`CREATE TABLE "${other}" (id int, name text)`, [], database);
  await adminQuery(`INSERT INTO "${other}" VALUES (1, 'kept')`, [], database);
  for (const helper of [setupStore, clearStore, dropStore]) {
    const error = await helper({ database, table: other }).catch((e: unknown) => e);
    assert.instance(error, TableExistsError);
  }
  assert.is(await rowCount(database, other), 1);
});

test('the CLI on a URL: setup, stats (bytes from the server), sessions, revoke, sweep, clear, drop; the password never printed', async () => {
  const database = withPassword(await postgresDatabase(), 'hunter2-secret');
  const table = freshTable();
  const cli = (...args: string[]) => runScript(bin, [...args, '--database', database, '--table', table], { timeoutMs: 30_000 });
  const setup = await cli('setup');
  assert.is(setup.code, 0, setup.stderr);
  assert.match(setup.stdout, /created table/);
  assert.not.match(setup.stdout, /hunter2/);
  assert.match((await cli('setup')).stdout, /nothing to do/);
  const app = await startSessionApp({ database, table, sweepSignal: false, maxAge: 60 });
  const mine = await Promise.all([1, 2].map((n) => app.store.put(null, { n }, { owner: 'ada' })));
  await app.store.put(null, { n: 3 });
  await app.stop();
  await plant(database, table, 7, 120_000);
  const stats = await cli('stats', '--max-age', '60');
  assert.is(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^live: 3\ndead: 7\nbytes: \d+\n$/);
  assert.ok(Number(/bytes: (\d+)/.exec(stats.stdout)![1]) > 8192);
  const list = await cli('sessions', '--owner', 'ada', '--max-age', '60');
  const handles = list.stdout
    .trim()
    .split('\n')
    .map((line) => line.split(/\s+/)[0]);
  assert.is(handles.length, 2);
  assert.match((await cli('revoke', '--owner', 'ada', '--handle', handles[0], '--max-age', '60')).stdout, /revoked: 1/);
  assert.match((await cli('revoke', '--owner', 'ada', '--max-age', '60')).stdout, /revoked: 1/);
  const sweep = await cli('sweep', '--max-age', '60');
  assert.is(sweep.stdout, 'deleted: 7\n');
  assert.match((await cli('clear')).stdout, /cleared .*: 1 sessions deleted/);
  assert.match((await cli('drop')).stdout, /dropped/);
  const missing = await cli('stats');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /does not exist/);
  assert.match(missing.stderr, /\*\*\*/);
  for (const out of [setup, stats, list, sweep, missing]) assert.not.match(out.stdout + out.stderr, /hunter2/);
  void mine;
});

// ── the cleaner ──────────────────────────────────────────────────────────

test('the cleaner sweeps dead sessions in batches and keeps the live ones (relative, fixed, maxLifetime)', async () => {
  for (const config of [{ maxAge: 60 }, { maxAge: 60, timestamp: 'fixed' as const }, { maxAge: 3600, maxLifetime: 60 }]) {
    await withPgApp(config, async (app, database, table) => {
      const live = await Promise.all(Array.from({ length: 20 }, (_, n) => app.store.put(null, { n })));
      await plant(database, table, 2500, 120_000);
      const report = await app.sweep();
      assert.is(report.deleted, 2500, JSON.stringify(config));
      assert.is(report.skipped, false);
      assert.is(await rowCount(database, table), 20);
      for (const id of live) assert.ok(await app.store.get(id!));
    });
  }
});

test('one sweeper at a time: while another process holds the sweep lock, sweep() reports skipped and deletes nothing; SIGUSR2 sweeps', () =>
  withPgApp({ maxAge: 60, sweepSignal: 'SIGUSR2' }, async (app, database, table) => {
    await plant(database, table, 30, 120_000);
    const other = new pg.Client({ connectionString: database });
    other.on('error', () => {});
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `SELECT pg_advisory_xact_lock(hashtextextended('supervised-sessions:sweep:' || current_schema() || '.' || $1::text, 0))`,
        [table],
      );
      const skipped = await app.sweep();
      assert.equal({ deleted: skipped.deleted, skipped: skipped.skipped }, { deleted: 0, skipped: true });
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    const reports: Array<{ deleted: number; trigger: string; skipped: boolean }> = [];
    app.on('sweep', (report) => reports.push(report));
    process.kill(process.pid, 'SIGUSR2');
    const started = Date.now();
    while (reports.length === 0 && Date.now() - started < 5000) await sleep(10);
    assert.equal(
      reports.map(({ deleted, trigger, skipped }) => ({ deleted, trigger, skipped })),
      [{ deleted: 30, trigger: 'signal', skipped: false }],
    );
  }));

// ── group commit and per-operation failures ─────────────────────────────

test('group commit: 200 concurrent writes take far fewer than 200 transactions (transaction ids consumed)', () =>
  withPgApp({}, async (app, database) => {
    const ids = await Promise.all(Array.from({ length: 200 }, (_, n) => app.store.put(null, { n })));
    // Every write transaction takes a transaction id (the engine asks for its
    // own, for the lost-reply check): ids consumed = write transactions, plus
    // one for each of these two probes. (pg_stat_database lags by seconds.)
    const xid = async () => Number((await adminQuery('SELECT pg_current_xact_id()::text AS x', [], database)).rows[0].x);
    const before = await xid();
    await Promise.all(ids.map((id, n) => app.store.patch(id!, { set: { m: n } })));
    const transactions = (await xid()) - before - 1;
    assert.ok(transactions >= 1 && transactions < 40, `200 patches in ${transactions} transactions`);
    for (const [n, id] of ids.entries()) assert.equal(await app.store.get(id!), { n, m: n });
  }));

test('a write inside touchAfter is a HOT update: it changes no indexed column, and the table leaves room on its pages (fillfactor 80)', () =>
  withPgApp({ touchAfter: 60 }, async (app, database, table) => {
    const { rows } = await adminQuery('SELECT reloptions FROM pg_class WHERE relname = $1', [table], database);
    assert.equal(rows[0].reloptions, ['fillfactor=80']);
    const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => app.store.put(null, { n })));
    for (let round = 1; round <= 4; round++) await Promise.all(ids.map((id) => app.store.patch(id!, { set: { round } })));
    // The server's statistics arrive within seconds of the transactions. (Not every one: versions written in one
    // statement cannot be pruned within it, and a full page sends the next version elsewhere.)
    const stats = async () =>
      (
        await adminQuery(
          'SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = $1',
          [table],
          database,
        )
      ).rows[0] as { upd: number; hot: number };
    let seen = await stats();
    for (const deadline = Date.now() + 20_000; seen.upd < 200 && Date.now() < deadline; seen = await stats()) await sleep(250);
    assert.ok(seen.upd >= 200, `200 patches counted: ${seen.upd}`);
    assert.ok(seen.hot >= 0.75 * seen.upd, `HOT updates: ${seen.hot} of ${seen.upd}`);
    for (const id of ids) assert.equal((await app.store.get(id!))!.round, 4);
  }));

test('one bad operation fails alone: NUL in data, too large, a merged run of patches; its neighbours in the batch commit', () =>
  withPgApp({ maxSessionBytes: 400 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const results = await Promise.allSettled([
      app.store.put(null, { first: 1 }),
      app.store.put(null, { bad: 'a\u0000b' }),
      app.store.patch(id, { set: { b: 2 } }),
      app.store.patch(id, { set: { c: 3 }, unset: ['a'] }),
      app.store.patch(id, { set: { big: 'x'.repeat(500) } }),
      app.store.put(null, { last: 1 }),
    ]);
    assert.equal(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    assert.instance((results[1] as PromiseRejectedResult).reason, TypeError);
    assert.match((results[1] as PromiseRejectedResult).reason.message, /NUL/);
    assert.equal(await app.store.get(id), { b: 2, c: 3 });
    assert.equal(await app.store.get((results[0] as PromiseFulfilledResult<string>).value), { first: 1 });
    // A string that merely spells \u0000 is fine.
    const literal = (await app.store.put(null, { s: '\\u0000' }))!;
    assert.equal(await app.store.get(literal), { s: '\\u0000' });
  }));

test('a read never waits for a row lock another connection holds, nor does the touch it owes; the touch lands once the lock is gone', () =>
  withPgApp({ touchAfter: 0, requestTimeout: 4000 }, async (app, database, table) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const other = new pg.Client({ connectionString: database });
    other.on('error', () => {});
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM "${table}" FOR UPDATE`);
      const before = Number((await adminQuery(`SELECT touched_at FROM "${table}"`, [], database)).rows[0].touched_at);
      await sleep(20);
      const started = Date.now();
      assert.equal(await app.store.get(id), { a: 1 });
      assert.equal(await app.store.get(id), { a: 1 }, 'the next batch does not wait behind the owed touch either');
      assert.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms while the row was locked`);
      await other.query('COMMIT');
      await app.store.get(id);
      await sleep(100);
      const after = Number((await adminQuery(`SELECT touched_at FROM "${table}"`, [], database)).rows[0].touched_at);
      assert.ok(after > before, 'touched once the lock was gone');
    } finally {
      await other.end();
    }
  }));

// ── connections that die ──

test('a COMMIT whose reply is lost is not run twice: committed, its replies are computed again and rolled back, so what another server wrote meanwhile stays', () =>
  withPgApp({ maxAge: 3600 }, async (app, database, table) => {
    try {
      const id = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
      writeFileSync(LOSE_REPLY, 'patch');
      const patched = app.store.patch(id, { set: { m: 2 } });
      // The patch committed and its reply is "lost": in the gap, another app server writes m = 99.
      const started = Date.now();
      while (!existsSync(`${LOSE_REPLY}.lost`) && Date.now() - started < 5000) await sleep(5);
      await adminQuery(`UPDATE "${table}" SET data = data || '{"m": 99, "other": 1}'`, [], database);
      rmSync(`${LOSE_REPLY}.lost`);
      // No 503: the caller gets the reply a replay would give, and the newer write stays.
      assert.is(await patched, true);
      assert.equal(await app.store.get(id), { n: 1, m: 99, other: 1 }, 'run twice, the patch would have put m back to 2');
      // A revoke's reply computed again after it committed finds the session gone, as a replay would.
      const [{ handle }] = await app.store.sessionsOf('ada');
      writeFileSync(LOSE_REPLY, 'revoke');
      const revoked = app.store.revoke('ada', handle);
      while (!existsSync(`${LOSE_REPLY}.lost`) && Date.now() - started < 10_000) await sleep(5);
      rmSync(`${LOSE_REPLY}.lost`);
      assert.is(await revoked, false);
      assert.equal(await app.store.sessionsOf('ada'), [], 'revoked, once');
      assert.is(app.status().children.store.restarts, 0);
    } finally {
      rmSync(LOSE_REPLY, { force: true });
      rmSync(`${LOSE_REPLY}.lost`, { force: true });
    }
  }));

test('a COMMIT reply lost, then the reply of the run that only computes the replies lost too: the batch is still applied once', () =>
  withPgApp({ maxAge: 3600 }, async (app, database, table) => {
    await adminQuery(`CREATE TABLE "${table}_audit" (xid xid8)`, [], database);
    await adminQuery(
      `CREATE FUNCTION "${table}_audit"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${table}_audit" VALUES (pg_current_xact_id()); RETURN NEW; END $$`,
      [],
      database,
    );
    await adminQuery(`CREATE TRIGGER audit AFTER UPDATE ON "${table}" FOR EACH ROW EXECUTE FUNCTION "${table}_audit"()`, [], database);
    const id = (await app.store.put(null, { n: 1 }))!;
    try {
      writeFileSync(LOSE_REPLY, 'patch');
      const patched = app.store.patch(id, { set: { m: 2 } });
      for (let loss = 0; loss < 2; loss++) {
        const started = Date.now();
        while (!existsSync(`${LOSE_REPLY}.lost`) && Date.now() - started < 5000) await sleep(5);
        assert.ok(existsSync(`${LOSE_REPLY}.lost`), `reply ${loss + 1} lost`);
        // Armed again before the engine reconnects: the next run's reply (the answer-only one) is lost too.
        if (loss === 0) writeFileSync(LOSE_REPLY, 'patch');
        rmSync(`${LOSE_REPLY}.lost`);
      }
      assert.is(await patched, true);
      assert.equal(await app.store.get(id), { n: 1, m: 2 });
      const { rows } = await adminQuery(`SELECT count(DISTINCT xid)::int AS n FROM "${table}_audit"`, [], database);
      assert.is(rows[0].n, 1, 'committed once: the rolled-back answer-only run never turned into a replay');
    } finally {
      rmSync(LOSE_REPLY, { force: true });
      rmSync(`${LOSE_REPLY}.lost`, { force: true });
    }
  }));

test('a batch whose connection was lost while the server was still inside its transaction is not run again until that transaction ended: committed once, its replies computed again', () =>
  withPgApp({ maxAge: 3600, requestTimeout: 10_000 }, async (app, database, table) => {
    // Every transaction that updates a row of the table leaves its id here.
    await adminQuery(`CREATE TABLE "${table}_audit" (xid xid8)`, [], database);
    await adminQuery(
      `CREATE FUNCTION "${table}_audit"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${table}_audit" VALUES (pg_current_xact_id()); RETURN NEW; END $$`,
      [],
      database,
    );
    await adminQuery(`CREATE TRIGGER audit AFTER UPDATE ON "${table}" FOR EACH ROW EXECUTE FUNCTION "${table}_audit"()`, [], database);
    const id = (await app.store.put(null, { n: 1 }))!;
    // An outside connection holds the row: the batch's patch waits on the server, inside its transaction.
    const holder = new pg.Client({ connectionString: database });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${table}" FOR UPDATE`);
      writeFileSync(DROP_INSIDE, 'patch');
      const patched = app.store.patch(id, { set: { m: 2 } });
      const started = Date.now();
      while (!existsSync(`${DROP_INSIDE}.dropped`) && Date.now() - started < 5000) await sleep(5);
      assert.ok(existsSync(`${DROP_INSIDE}.dropped`), 'the connection was dropped inside the transaction');
      // The engine has reconnected and found the first run in progress; a replay now would run it twice.
      await sleep(500);
      await holder.query('COMMIT');
      assert.is(await patched, true, 'the caller gets the reply, no 503');
      assert.equal(await app.store.get(id), { n: 1, m: 2 });
      const { rows } = await adminQuery(`SELECT count(DISTINCT xid)::int AS n FROM "${table}_audit"`, [], database);
      assert.is(rows[0].n, 1, 'one transaction applied the patch: it never ran a second time');
      assert.is(app.status().children.store.restarts, 0);
    } finally {
      await holder.end().catch(() => {});
      rmSync(DROP_INSIDE, { force: true });
      rmSync(`${DROP_INSIDE}.dropped`, { force: true });
    }
  }));

test("pg_terminate_backend of the store's connection under load: every call succeeds (replayed), nothing lost, no restart", () =>
  withPgApp({ requestTimeout: 5000 }, async (app, database) => {
    const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => app.store.put(null, { n })));
    let stop = false;
    let kills = 0;
    const killer = (async () => {
      while (!stop) {
        const { rowCount: n } = await adminQuery(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'supervised-sessions' AND pid <> pg_backend_pid()`,
          [],
          database,
        );
        kills += n ?? 0;
        await sleep(40);
      }
    })();
    const acknowledged: Array<[string, number]> = [];
    const deadline = Date.now() + 2500;
    let round = 0;
    while (Date.now() < deadline && round < 400) {
      round++;
      await Promise.all(
        ids.map(async (id, n) => {
          if (await app.store.patch(id!, { set: { round } })) acknowledged.push([id!, round]);
          else throw new Error(`patch of a live session ${n} said gone`);
        }),
      );
    }
    stop = true;
    await killer;
    assert.ok(kills >= 3, `the connection was killed ${kills} times`);
    for (const id of ids) assert.equal(await app.store.get(id!), { n: ids.indexOf(id), round });
    assert.is(app.status().children.store.restarts, 0, 'a lost connection is not a crash');
  }));

test.run();
