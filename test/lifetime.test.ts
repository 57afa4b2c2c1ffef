// A session's own lifetime (contract, every engine, every front door):
// "remember me" for 30 days, or 5 minutes for a sensitive step, in place of
// the app's maxAge. Time passes here by moving the stored times into the
// past, as an outside writer would (the file, or the table): no sleeps.
// test/run.ts runs this suite on SQLite and on PostgreSQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { createHandler, startSessionApp, type Session, type SessionApp, type SessionAppConfig } from '../src/index.ts';
import { digest, newSessionId } from '../src/store/ids.ts';
import { expiryPolicy } from '../src/store/expiry.ts';
import { deadSqlite } from '../src/engines/sqlite/sweep.ts';
import { sweepStatements } from '../src/engines/postgres/statements.ts';
import { main as cli } from '../src/cli.ts';
import { tempDir } from './helpers.ts';
import {
  adminQuery,
  onPostgres,
  onRedis,
  postgresOnly,
  redisAge,
  redisSessionKeys,
  sqlOnly,
  sqliteOnly,
  storeLocation,
} from './engines.ts';
import { createServer } from 'node:http';
import express5 from 'express';
import { sessions } from '../src/http/express.ts';
import { closeDoors, cookieOf, DOORS, get, listenNode, serve, type Route } from './doors.ts';

const temp = tempDir();
const started: SessionApp[] = [];
/** maxAge one hour (touchAfter 60 s by default). */
let app: SessionApp;

const HOUR = 3_600_000;
const DAY = 86_400;

async function start(name: string, config: SessionAppConfig = {}): Promise<SessionApp> {
  const location = await storeLocation(temp.dir, name);
  const one = await startSessionApp({ ...location, sweepSignal: false, cleanerInterval: 3600, maxAge: 3600, ...config });
  started.push(one);
  return one;
}

test.before(async () => {
  app = await start('lifetime');
});
test.after(async () => {
  await closeDoors();
  for (const each of started) await each.stop();
  temp.remove();
});

/** Runs SQL on the store's file or table from outside the app. */
async function outside(target: SessionApp, sql: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  if (onPostgres) return (await adminQuery(sql, values, target.config.database)).rows;
  const db = new DatabaseSync(target.config.database);
  try {
    return db.prepare(sql).all(...(values as never[])) as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}

/** Moves the stored times of the given sessions (every session without ids) `ms` into the past. */
async function age(target: SessionApp, ms: number, ids?: string[]): Promise<void> {
  if (onRedis)
    return redisAge(
      target.config.table,
      ms,
      ids?.map((id) => digest(id)),
      target.config.database,
    );
  const table = `"${target.config.table}"`;
  if (ids === undefined) {
    await outside(target, `UPDATE ${table} SET created_at = created_at - ${ms}, touched_at = touched_at - ${ms}`);
    return;
  }
  for (const id of ids) {
    await outside(
      target,
      `UPDATE ${table} SET created_at = created_at - ${ms}, touched_at = touched_at - ${ms} WHERE sid_hash = ${onPostgres ? '$1' : '?'}`,
      [digest(id)],
    );
  }
}

/** The call rejects with a TypeError whose message matches. */
async function refused(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  const error = await call().then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.instance(error, TypeError);
  assert.match(error!.message, message);
}

// ── The store: put, patch, renew, sessionsOf, the sweep ──────────────────

test('a remembered session outlives the app maxAge, a short one dies before it; count and sessionsOf agree', async () => {
  const target = await start('outlive');
  const remembered = (await target.store.put(null, { who: 'remembered' }, { owner: 'ada', maxAge: 30 * DAY }))!;
  const short = (await target.store.put(null, { who: 'short' }, { owner: 'ada', maxAge: 60 }))!;
  const plain = (await target.store.put(null, { who: 'plain' }, { owner: 'ada' }))!;
  const listed = await target.store.sessionsOf('ada');
  const byWho = new Map(listed.map((info) => [info.data.who, info]));
  assert.is(
    byWho.get('remembered')!.expiresAt - byWho.get('remembered')!.touchedAt,
    30 * DAY * 1000,
    "sessionsOf reports the session's own expiry",
  );
  assert.is(byWho.get('short')!.expiresAt - byWho.get('short')!.touchedAt, 60_000);
  assert.is(byWho.get('plain')!.expiresAt - byWho.get('plain')!.touchedAt, HOUR, "the app's maxAge for the others");
  await age(target, 90_000);
  assert.is(await target.store.get(short), null, 'the 60 s session is dead after 90 s');
  assert.equal(await target.store.get(plain), { who: 'plain' }, 'the app maxAge (1 h) still holds the plain one');
  assert.is(await target.store.count(), 2);
  assert.is(await target.store.patch(short, { set: { n: 1 } }), false, 'a dead short session is never revived');
  await age(target, 2 * HOUR);
  assert.is(await target.store.get(plain), null, 'dead after the app maxAge');
  assert.equal(await target.store.get(remembered), { who: 'remembered' }, 'the 30-day session outlives the app maxAge');
  assert.is(await target.store.count(), 1);
  assert.equal(
    (await target.store.sessionsOf('ada')).map((info) => info.data.who),
    ['remembered'],
  );
});

test('patch sets a lifetime and null goes back to the app maxAge; renew keeps it, or a login sets it in the same step', async () => {
  const id = (await app.store.put(null, { n: 1 }))!;
  assert.is(await app.store.patch(id, { maxAge: 7 * DAY }), true);
  const renewed = (await app.store.renew(id))!;
  await age(app, 2 * HOUR, [renewed]);
  assert.equal(await app.store.get(renewed), { n: 1 }, 'renew kept the 7-day lifetime');
  assert.is(await app.store.patch(renewed, { set: { n: 2 }, maxAge: null }), true);
  await age(app, 2 * HOUR, [renewed]);
  assert.is(await app.store.get(renewed), null, "back to the app's maxAge: dead after 2 h");
  const login = (await app.store.put(null, { n: 3 }))!;
  const next = (await app.store.renew(login, { set: { user: 'ada' }, owner: 'grace-login', maxAge: 30 * DAY }))!;
  const [info] = await app.store.sessionsOf('grace-login');
  assert.is(info.expiresAt - info.touchedAt, 30 * DAY * 1000, 'the login set the lifetime with the new id');
  await age(app, 2 * HOUR, [next]);
  assert.equal(await app.store.get(next), { n: 3, user: 'ada' });
});

test('maxLifetime still caps a remembered session; a put keeps the lifetime unless it names one', async () => {
  const capped = await start('capped', { maxLifetime: 2 * 3600 });
  const remembered = (await capped.store.put(null, { n: 1 }, { owner: 'ada', maxAge: 30 * DAY }))!;
  const [info] = await capped.store.sessionsOf('ada');
  assert.is(info.expiresAt - info.createdAt, 2 * HOUR, 'expiresAt is the cap');
  await age(capped, 90 * 60_000);
  assert.is(await capped.store.put(remembered, { n: 2 }), remembered, 'a put of the live session');
  assert.equal(await capped.store.get(remembered), { n: 2 });
  await age(capped, 45 * 60_000);
  assert.is(await capped.store.get(remembered), null, 'dead at maxLifetime whatever its own lifetime');
  const other = (await capped.store.put(null, { n: 3 }, { maxAge: 30 * DAY }))!;
  assert.is(await capped.store.put(other, { n: 4 }, { maxAge: 60 }), other);
  await age(capped, 90_000, [other]);
  assert.is(await capped.store.get(other), null, 'the put set a 60 s lifetime');
});

test("'fixed' timestamps: a session's own lifetime counts from its creation, whatever the activity", async () => {
  const fixed = await start('fixed', { timestamp: 'fixed' });
  const id = (await fixed.store.put(null, { n: 1 }, { maxAge: 2 * 3600 }))!;
  await age(fixed, 90 * 60_000);
  assert.is(await fixed.store.patch(id, { set: { n: 2 } }), true, 'live at 1.5 h (the app maxAge is 1 h)');
  await age(fixed, 45 * 60_000);
  assert.is(await fixed.store.get(id), null, 'dead 2 h after creation, though written 45 minutes ago');
});

test('the sweep deletes a short session early and keeps a remembered one past the app maxAge', async () => {
  const target = await start('sweep');
  const remembered = (await target.store.put(null, { n: 1 }, { maxAge: 30 * DAY }))!;
  const short = (await target.store.put(null, { n: 2 }, { maxAge: 60 }))!;
  const plain = (await target.store.put(null, { n: 3 }))!;
  await age(target, 90_000);
  assert.is((await target.sweep()).deleted, 1, 'the short one only');
  assert.is(
    onRedis
      ? await redisSessionKeys(target.config.table, target.config.database)
      : Number((await outside(target, `SELECT count(*) AS n FROM "${target.config.table}"`))[0].n),
    2,
  );
  await age(target, 2 * HOUR);
  assert.is((await target.sweep()).deleted, 1, 'the plain one, past the app maxAge');
  assert.equal(await target.store.get(remembered), { n: 1 });
  assert.is(await target.store.get(short), null);
  assert.is(await target.store.get(plain), null);
});

test('a lifetime that is not a number of seconds is a TypeError naming maxAge; nothing stored, nothing changed', async () => {
  const id = (await app.store.put(null, { n: 1 }))!;
  const before = await app.store.count();
  for (const bad of [0, 0.5, -1, Number.NaN, Infinity, '30', 11 * 365 * DAY, {}]) {
    await refused(
      () => app.store.put(null, { n: 2 }, { maxAge: bad as number }),
      /store\.put\(sid, data, \{ maxAge \}\): maxAge must be a number of seconds/,
    );
    await refused(() => app.store.patch(id, { set: { n: 3 }, maxAge: bad as number }), /store\.patch\(sid, \{ maxAge \}\): maxAge/);
    await refused(() => app.store.renew(id, { maxAge: bad as number }), /store\.renew\(sid, \{ maxAge \}\): maxAge/);
  }
  // A typo is named, never silently ignored (a "remember me" that would not remember).
  await refused(
    () => app.store.put(null, { n: 2 }, { maxage: 60 } as never),
    /store\.put\(sid, data, options\): unknown key "maxage"; known: owner, maxAge/,
  );
  await refused(() => app.store.patch(id, { maxage: 60 } as never), /store\.patch\(sid, changes\): unknown key "maxage"/);
  assert.is(await app.store.count(), before);
  assert.equal(await app.store.get(id), { n: 1 }, 'the session as it was');
});

test('a lifetime-only change keeps the owner and the data; a call refused as too large changes no lifetime either', async () => {
  const target = await start('halfway', { maxSessionBytes: 1024 });
  const id = (await target.store.put(null, { n: 1 }, { owner: 'keeper' }))!;
  assert.is(await target.store.patch(id, { maxAge: 60 }), true);
  assert.is(await target.store.put(id, { n: 2 }, { maxAge: 120 }), id);
  const [kept] = await target.store.sessionsOf('keeper');
  assert.ok(kept, "still the owner's");
  assert.equal(kept.data, { n: 2 });
  assert.is(kept.expiresAt - kept.touchedAt, 120_000);
  const big = 'x'.repeat(2000);
  const tooLarge = async (call: () => Promise<unknown>) => {
    const error = await call().then(
      () => null,
      (e: unknown) => e as Error,
    );
    assert.is(error?.name, 'SessionTooLargeError');
  };
  await tooLarge(() => target.store.patch(id, { set: { big }, maxAge: 30 * DAY }));
  await tooLarge(() => target.store.put(id, { big }, { maxAge: 30 * DAY }));
  await tooLarge(() => target.store.renew(id, { replace: { big }, maxAge: 30 * DAY }));
  const [after] = await target.store.sessionsOf('keeper');
  assert.is(after.expiresAt - after.touchedAt, 120_000, 'no lifetime stored by a refused call');
  assert.equal(after.data, { n: 2 });
  assert.equal(await target.store.get(id), { n: 2 }, 'the id unmoved');
});

test('a replayed create keeps its lifetime: a store crash after the commit, the reply lost', async () => {
  const target = await start('replay');
  const pending = target.store.put(null, { n: 1 }, { owner: 'replayed', maxAge: 30 * DAY });
  await target.kill('store');
  const id = (await pending)!;
  const [info] = await target.store.sessionsOf('replayed');
  assert.is(info.expiresAt - info.touchedAt, 30 * DAY * 1000);
  await age(target, 2 * HOUR);
  assert.equal(await target.store.get(id), { n: 1 });
});

// ── The table: upgraded in place, every session and its expiry kept ──────

const LAYOUTS: Array<[string, string[]]> = [
  ['0.1.0', ['sid_hash', 'data', 'created_at', 'touched_at']],
  ['the current release (renewed ids)', ['sid_hash', 'data', 'created_at', 'touched_at', 'owner', 'renewed_to']],
];

for (const [release, columns] of LAYOUTS) {
  sqlOnly(
    `a table of ${release} is upgraded in place: every session kept with its expiry; a lifetime of its own can then be set`,
    async () => {
      const location = await storeLocation(temp.dir, `upgrade-${columns.length}`);
      const table = location.table ?? 'session';
      const type = (column: string) =>
        ({
          sid_hash: onPostgres ? 'bytea PRIMARY KEY' : 'BLOB NOT NULL PRIMARY KEY',
          data: onPostgres ? 'jsonb NOT NULL' : 'TEXT NOT NULL',
          created_at: onPostgres ? 'bigint NOT NULL' : 'INTEGER NOT NULL',
          touched_at: onPostgres ? 'bigint NOT NULL' : 'INTEGER NOT NULL',
          owner: onPostgres ? 'text' : 'TEXT',
          renewed_to: onPostgres ? 'bytea' : 'BLOB',
        })[column];
      const ddl = `CREATE TABLE "${table}" (${columns.map((column) => `${column} ${type(column)}`).join(', ')})`;
      const index = `CREATE INDEX "${table}_touched_at" ON "${table}" (touched_at)`;
      const ids = Array.from({ length: 20 }, () => newSessionId());
      const now = Date.now();
      // Session n was last used n minutes ago.
      const row = (n: number) => [
        digest(ids[n]),
        JSON.stringify({ n }),
        now - n * 60_000,
        now - n * 60_000,
        ...(columns.length > 4 ? [n % 2 ? 'ada' : null, null] : []),
      ];
      const marks = columns.map((_, i) => (onPostgres ? `$${i + 1}` : '?')).join(', ');
      if (onPostgres) {
        const client = new pg.Client({ connectionString: location.database });
        await client.connect();
        try {
          await client.query(ddl);
          await client.query(index);
          for (let n = 0; n < ids.length; n++) await client.query(`INSERT INTO "${table}" VALUES (${marks})`, row(n));
        } finally {
          await client.end();
        }
      } else {
        const db = new DatabaseSync(location.database);
        db.exec(ddl);
        db.exec(index);
        const insert = db.prepare(`INSERT INTO "${table}" VALUES (${marks})`);
        for (let n = 0; n < ids.length; n++) insert.run(...(row(n) as never[]));
        db.close();
      }
      const refusedStart = await startSessionApp({ ...location, sweepSignal: false, autoSetup: false }).catch(
        (error: unknown) => error as Error,
      );
      assert.is((refusedStart as Error).name, 'TableNotExistsError');
      const upgraded = await startSessionApp({ ...location, sweepSignal: false, cleanerInterval: 3600, maxAge: 3600 });
      started.push(upgraded);
      for (const [n, id] of ids.entries()) assert.equal(await upgraded.store.get(id), { n }, 'every session kept');
      if (columns.length > 4) {
        const listed = await upgraded.store.sessionsOf('ada');
        assert.is(listed.length, 10, 'owners kept');
        for (const info of listed) assert.is(info.expiresAt, info.touchedAt + HOUR, 'the expiry as before: the app maxAge');
      }
      // The old full index on touched_at is replaced by the partial one.
      const definitions = onPostgres
        ? (await adminQuery(`SELECT indexdef AS sql FROM pg_indexes WHERE tablename = $1`, [table], location.database)).rows
        : await outside(upgraded, `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`, [table]);
      const touchedIndex = definitions.map((d) => String(d.sql)).find((sql) => sql.includes(`${table}_touched_at`));
      assert.match(touchedIndex!, /WHERE \(?max_age IS NULL\)?/, touchedIndex);
      assert.ok(
        definitions.some((d) => String(d.sql).includes(`${table}_own_touched`)),
        'the own-lifetime index exists',
      );
      assert.is(await upgraded.store.patch(ids[0], { maxAge: 30 * DAY }), true);
      await age(upgraded, 2 * HOUR);
      assert.equal(await upgraded.store.get(ids[0]), { n: 0 }, 'the lifetime set after the upgrade holds');
      assert.is(await upgraded.store.count(), 1);
      await upgraded.stop();
    },
  );
}

// ── The sweep stays an index range scan (query plans) ────────────────────

sqliteOnly('the sweep reads every index as a range, never the whole table (SQLite query plans, both timestamp rules)', async () => {
  const target = await start('plans-sqlite');
  const db = new DatabaseSync(target.config.database);
  try {
    for (const base of ['touched_at', 'created_at'] as const) {
      const plan = (
        db
          .prepare(`EXPLAIN QUERY PLAN SELECT rowid FROM "${target.config.table}" WHERE ${deadSqlite(base)} LIMIT 500`)
          .all(0, 0, 0) as Array<{ detail: string }>
      )
        .map((row) => row.detail)
        .join(' | ');
      assert.match(plan, /MULTI-INDEX OR/, plan);
      assert.match(
        plan,
        new RegExp(`INDEX ${target.config.table}_own_${base === 'touched_at' ? 'touched' : 'created'} \\(<expr><\\?\\)`),
        plan,
      );
      // The sessions on the app's maxAge in a partial index of their own: a batch never steps over a live remembered session.
      assert.match(
        plan,
        new RegExp(`INDEX ${target.config.table}_${base === 'touched_at' ? 'touched_at' : 'app_created'} \\(${base}<\\?\\)`),
        plan,
      );
      assert.match(plan, new RegExp(`INDEX ${target.config.table}_created_at \\(created_at<\\?\\)`), plan);
      assert.not.match(plan, /SCAN /, plan);
    }
  } finally {
    db.close();
  }
});

postgresOnly(
  'the sweep reads each index as a range, in expiry order, never the whole table (PostgreSQL query plans, both timestamp rules)',
  async () => {
    const target = await start('plans-pg', { maxLifetime: 30 * DAY });
    const { table, database } = target.config;
    // Enough rows that the plan is the index's own choice: a backlog of dead
    // sessions on the app's maxAge (last used up to 8 h ago, maxAge 1 h), and
    // one in ten with a lifetime of its own, a few of them dead (5 minutes).
    await adminQuery(
      `INSERT INTO "${table}" (sid_hash, data, created_at, touched_at, max_age)
    SELECT sha256(i::text::bytea), '{}', (extract(epoch from now()) * 1000)::bigint - i * 1000, (extract(epoch from now()) * 1000)::bigint - i * 1000,
      CASE WHEN i % 500 = 0 THEN 300000 WHEN i % 10 = 0 THEN 86400000 * (1 + i % 30) END
    FROM generate_series(1, 30000) AS i`,
      [],
      database,
    );
    await adminQuery(`ANALYZE "${table}"`, [], database);
    for (const timestamp of ['relative', 'fixed'] as const) {
      const statements = sweepStatements(table, expiryPolicy({ maxAge: 3600, timestamp, maxLifetime: 30 * DAY }));
      const expected = [
        timestamp === 'relative' ? 'touched_at' : 'app_created',
        timestamp === 'relative' ? 'own_touched' : 'own_created',
        'created_at',
      ];
      assert.is(statements.length, 3);
      for (const [n, sql] of statements.entries()) {
        const { rows } = await adminQuery(`EXPLAIN ${sql.replace('$1', '500')}`, [], database);
        const plan = rows.map((row: { 'QUERY PLAN': string }) => row['QUERY PLAN']).join('\n');
        // An index range (an Index Cond on that index), never the whole partial index read and sorted.
        assert.match(
          plan,
          new RegExp(`Index (Only )?Scan (using|on) ${table}_${expected[n]}\\b[^\\n]*\\n\\s*Index Cond:`),
          `${timestamp} #${n}: ${plan}`,
        );
        assert.not.match(plan, /Seq Scan/, plan);
        // Each index named holds only the rows its condition can delete (partial where needed: touched_at, app_created,
        // own_*), so a batch never steps over live rows; a "Filter: (max_age IS NULL)" left in the plan only rechecks
        // the partial index's own predicate under FOR UPDATE.
      }
    }
  },
);

// ── The CLI ──────────────────────────────────────────────────────────────

test("CLI sessions prints each session's own expiry", async () => {
  const target = await start('cli');
  await target.store.put(null, { n: 1 }, { owner: 'cli-owner', maxAge: 30 * DAY });
  const [info] = await target.store.sessionsOf('cli-owner');
  const lines: string[] = [];
  const errors: string[] = [];
  const code = await cli(
    [
      'sessions',
      '--owner',
      'cli-owner',
      '--database',
      target.config.database,
      ...(target.config.table !== 'session' ? ['--table', target.config.table] : []),
      '--max-age',
      '3600',
    ],
    { out: (line) => lines.push(line), err: (line) => errors.push(line) },
  );
  assert.is(code, 0, errors.join('\n'));
  assert.is(lines.length, 1);
  assert.ok(lines[0].endsWith(`expires ${new Date(info.expiresAt).toISOString()}`), lines[0]);
  assert.is(info.expiresAt - info.touchedAt, 30 * DAY * 1000);
});

// ── Every front door: session.setMaxAge ──────────────────────────────────

test('setMaxAge once the headers are out throws ERR_SESSION_HEADERS_SENT and stores nothing (createHandler, Express 5)', async () => {
  const target = await start('late-lifetime');
  const id = (await target.store.put(null, { n: 1 }, { owner: 'late' }))!;
  const codes: unknown[] = [];
  const late = (session: Session, write: (chunk: string) => void, end: () => void) => {
    write('streamed ');
    try {
      session.setMaxAge(30 * DAY);
    } catch (error) {
      codes.push((error as { code?: string }).code);
    }
    end();
  };
  const plain = await listenNode(
    createServer(
      createHandler(
        target.store,
        (_req, res, session) =>
          late(
            session,
            (c) => res.write(c),
            () => res.end(),
          ),
        { onError: () => {} },
      ),
    ),
  );
  const web = express5();
  web.use(sessions(target.store, { onError: () => {} }));
  web.get('/', (req, res) =>
    late(
      req.session,
      (c) => res.write(c),
      () => res.end(),
    ),
  );
  const viaExpress = await listenNode(createServer(web));
  for (const url of [plain, viaExpress]) {
    const reply = await get(`${url}/`, `sid=${id}`);
    assert.is(reply.status, 200);
    assert.is(reply.cookies.length, 0);
  }
  assert.equal(codes, ['ERR_SESSION_HEADERS_SENT', 'ERR_SESSION_HEADERS_SENT']);
  const [info] = await target.store.sessionsOf('late');
  assert.is(info.expiresAt - info.touchedAt, HOUR, 'the lifetime was not stored without its cookie');
});

const routes: Route = async (session, query) => {
  const action = query.get('do');
  try {
    if (action === 'remember') {
      session.set('user', 'ada');
      session.setMaxAge(30 * DAY);
      session.renew();
    } else if (action === 'short') {
      session.set('user', 'bob');
      session.setMaxAge(60);
    } else if (action === 'forget') {
      session.setMaxAge(null);
    } else if (action === 'lifetime-only') {
      session.setMaxAge(7 * DAY);
    } else if (action === 'renew') {
      session.renew();
    } else if (action === 'clear') {
      session.clear();
      session.set('user', 'ada');
    } else if (action === 'count') {
      session.set('n', ((session.get('n') as number | undefined) ?? 0) + 1);
    } else if (action === 'bad') {
      session.setMaxAge(Number(query.get('value')));
    } else if (action === 'fail') {
      session.setMaxAge(60);
      if (query.get('renew')) session.renew();
      return { status: 500, body: { failed: true } };
    }
  } catch (error) {
    return { status: 400, body: { error: (error as Error).message } };
  }
  return { body: { user: session.get('user') ?? null, maxAge: session.maxAge } };
};

for (const door of DOORS) {
  test(`${door}: setMaxAge gives a remembered session its own lifetime and a persistent cookie; a short one dies early`, async () => {
    const target = await start(`door-${door.replace(' ', '')}`, { touchAfter: 5 });
    const url = await serve(door, routes, {}, target.store);
    const plainReply = await get(`${url}/?do=renew`);
    assert.is(plainReply.cookies.length, 0, 'nothing to store: no cookie');
    const remembered = await get(`${url}/?do=remember`);
    const line = remembered.cookies.find((l) => l.startsWith('sid='))!;
    assert.match(line, /; Max-Age=2592000(;|$)/, `a persistent cookie without cookie.maxAge: ${line}`);
    const short = await get(`${url}/?do=short`);
    assert.match(short.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=60(;|$)/);
    const rememberedCookie = cookieOf(remembered)!;
    const shortCookie = cookieOf(short)!;
    assert.equal((await get(`${url}/`, rememberedCookie)).body, { user: 'ada', maxAge: 30 * DAY }, 'the session knows its lifetime');
    await age(target, 90_000);
    assert.equal((await get(`${url}/`, shortCookie)).body, { user: null, maxAge: null }, 'the 60 s session: dead after 90 s');
    await age(target, 2 * HOUR);
    // The read renews the sliding timestamp (older than touchAfter): the cookie is re-sent with the session's own Max-Age.
    const read = await get(`${url}/`, rememberedCookie);
    assert.equal(read.body, { user: 'ada', maxAge: 30 * DAY }, 'the remembered session outlives the app maxAge (1 h)');
    assert.match(read.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=2592000(;|$)/, 'the sliding re-send carries the own lifetime');
    assert.is((await get(`${url}/`, rememberedCookie)).cookies.length, 0, 'within touchAfter: no re-send');
    // renew keeps the lifetime, and its cookie says so.
    const renewed = await get(`${url}/?do=renew`, rememberedCookie);
    assert.match(renewed.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=2592000(;|$)/, 'renew keeps the lifetime');
    // setMaxAge(null): back to the app's maxAge, and a browser-session cookie again.
    const forgot = await get(`${url}/?do=forget`, cookieOf(renewed));
    const forgotLine = forgot.cookies.find((l) => l.startsWith('sid='))!;
    assert.ok(forgotLine, 'the cookie is re-sent with its new lifetime');
    assert.not.match(forgotLine, /Max-Age|Expires/, forgotLine);
    await age(target, 2 * HOUR);
    assert.equal((await get(`${url}/`, cookieOf(renewed))).body, { user: null, maxAge: null }, "dead after the app's maxAge");
  });

  test(`${door}: the sliding cookie moves only with the expiry — inside touchAfter no read or write re-sends it or moves the stored expiry; the first read after it re-sends it, and the browser's expiry is the server's expiresAt`, async () => {
    const target = await start(`slide-${door.replace(' ', '')}`, { touchAfter: 10 });
    const url = await serve(door, routes, { cookie: { maxAge: 3600 } }, target.store);
    const id = (await target.store.put(null, { user: 'ada' }, { owner: 'ada' })) as string;
    const cookie = `sid=${id}`;
    const expiresAt = async () => (await target.store.sessionsOf('ada'))[0].expiresAt;
    await age(target, 2000);
    const before = await expiresAt();
    const read = await get(`${url}/`, cookie);
    assert.equal(read.cookies, [], 'a read inside touchAfter re-sends nothing');
    const write = await get(`${url}/?do=count`, cookie);
    assert.equal(write.cookies, [], 'a write inside touchAfter re-sends nothing');
    assert.is(await expiresAt(), before, 'and neither moved the stored expiry');
    /** A request whose re-sent cookie (Max-Age=3600) carries the stored expiry: now + maxAge, within the round trip. */
    const resending = async (path: string, why: string) => {
      const sent = Date.now();
      const response = await get(`${url}${path}`, cookie);
      const received = Date.now();
      const line = response.cookies.find((l) => l.startsWith('sid='));
      assert.ok(line, why);
      assert.match(line!, /; Max-Age=3600(;|$)/);
      const server = await expiresAt();
      assert.ok(
        server >= sent + 3600_000 && server <= received + 3600_000,
        `the stored expiry moved to now + maxAge: ${server - sent - 3600_000} ms`,
      );
      return { line: line!, sent, received, server };
    };
    await age(target, 60_000);
    const { line, sent, received, server } = await resending('/', 'the first read after touchAfter re-sends the cookie');
    // The browser's expiry: the response's time + Max-Age, to the request's round trip (Expires, when sent, to the second).
    const browser = (sent + received) / 2 + 3600_000;
    assert.ok(Math.abs(browser - server) <= received - sent + 1, `browser ${browser} vs server ${server}`);
    const expires = /; Expires=([^;]+)/.exec(line)?.[1];
    if (expires !== undefined)
      assert.ok(Math.abs(Date.parse(expires) - server) < 2000, `Expires=${expires} vs ${new Date(server).toUTCString()}`);
    const after = await get(`${url}/?do=count`, cookie);
    assert.equal(after.cookies, [], 'and a write right after re-sends nothing');
    assert.is(await expiresAt(), server, 'nor moves the expiry the browser holds');
    // clear() stores the session whole (a put: its timestamp is now), so the cookie goes out with that expiry.
    await age(target, 2000);
    await resending('/?do=clear', 'a clear() inside touchAfter moved the expiry: the cookie is re-sent');
  });

  test(`${door}: the touch option — a polling route neither renews the timestamp nor re-sends the cookie; a touch that throws is reported`, async () => {
    const target = await start(`touch-${door.replace(' ', '')}`, { touchAfter: 5 });
    const seen: unknown[] = [];
    const errors: string[] = [];
    // What each door hands touch: node's request, a Web Request, Koa's ctx, Hono's c.
    const headersOf = (req: any) => req.req?.raw?.headers ?? req.headers;
    const header = (req: any, name: string) => {
      const headers = headersOf(req);
      return typeof headers?.get === 'function' ? (headers.get(name) ?? undefined) : headers?.[name];
    };
    const url = await serve(
      door,
      routes,
      {
        cookie: { maxAge: 3600 },
        onError: (error: Error) => errors.push(error.message),
        touch: (req: any) => {
          seen.push(req);
          if (header(req, 'x-bad-touch') !== undefined) throw new Error('touch bug');
          return header(req, 'x-poll') === undefined;
        },
      } as any,
      target.store,
    );
    const ids = await Promise.all([1, 2, 3, 4].map(() => target.store.put(null, { user: 'ada' }) as Promise<string>));
    await age(target, 60_000);
    // Polls, in parallel (one batch on PostgreSQL): served, no cookie, nothing renewed.
    const polls = await Promise.all(ids.map((id) => get(`${url}/`, `sid=${id}`, { 'x-poll': '1' })));
    for (const poll of polls) {
      assert.equal(poll.body, { user: 'ada', maxAge: null });
      assert.equal(poll.cookies, [], 'a poll re-sends no cookie');
    }
    assert.ok(seen.length >= 4, 'touch was asked');
    // Had a poll renewed the timestamp, these reads (within touchAfter of it) would re-send nothing.
    const reads = await Promise.all(ids.map((id) => get(`${url}/`, `sid=${id}`)));
    for (const read of reads) assert.match(read.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=3600(;|$)/, 'the first read renews');
    assert.equal((await get(`${url}/`, `sid=${ids[0]}`)).cookies, [], 'within touchAfter: no re-send');
    // A touch that throws: reported, and the request is served as any other (it renews).
    await age(target, 60_000, [ids[1]]);
    const bad = await get(`${url}/`, `sid=${ids[1]}`, { 'x-bad-touch': '1' });
    assert.is(bad.status, 200);
    assert.is(bad.cookies.length, 1, `served as a touching read: ${bad.cookies}`);
    assert.ok(
      errors.some((message) => /touch option threw: touch bug/.test(message)),
      errors.join('; '),
    );
  });

  test(`${door}: a new session may set only its lifetime; a bad lifetime is a TypeError in the handler; an error page stores none`, async () => {
    const target = await start(`door-edge-${door.replace(' ', '')}`);
    const url = await serve(door, routes, {}, target.store);
    const only = await get(`${url}/?do=lifetime-only`);
    assert.match(only.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=604800(;|$)/, 'stored, with its cookie');
    assert.equal((await get(`${url}/`, cookieOf(only))).body, { user: null, maxAge: 7 * DAY });
    for (const [value, message] of [
      ['0', /from 1 to 34560000/],
      [String(30 * DAY * 1000), /milliseconds\?/],
      ['NaN', /got NaN/],
    ] as const) {
      const bad = await get(`${url}/?do=bad&value=${value}`, cookieOf(only));
      assert.is(bad.status, 400);
      assert.match(bad.body.error, /session\.setMaxAge\(seconds\)/);
      assert.match(bad.body.error, message);
    }
    assert.equal((await get(`${url}/`, cookieOf(only))).body, { user: null, maxAge: 7 * DAY }, 'unchanged');
    const failed = await get(`${url}/?do=fail`, cookieOf(only));
    assert.is(failed.status, 500);
    assert.is(failed.cookies.length, 0, 'an error page: the lifetime change is not stored, no cookie');
    assert.equal((await get(`${url}/`, cookieOf(only))).body, { user: null, maxAge: 7 * DAY }, 'the stored lifetime as it was');
    // renew() applies on an error page; its cookie carries the lifetime the store kept, not the one refused.
    const failedLogin = await get(`${url}/?do=fail&renew=1`, cookieOf(only));
    assert.is(failedLogin.status, 500);
    assert.match(failedLogin.cookies.find((l) => l.startsWith('sid='))!, /; Max-Age=604800(;|$)/);
    assert.equal((await get(`${url}/`, cookieOf(failedLogin))).body, { user: null, maxAge: 7 * DAY });
  });
}

test.run();
