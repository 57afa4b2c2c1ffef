// Owners (docs/owners.md): a user's sessions listed, one revoked, all but
// this one revoked, a cap per owner, the in-place upgrade of a 0.1.0 table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { request } from 'undici';
import { startSessionApp, createHandler, setupStore, TableNotExistsError, type SessionApp, type SessionHandler } from '../src/index.ts';
import { ownerStatements } from '../src/engines/sqlite/engine.ts';
import { Session } from '../src/http/session.ts';
import { runScript, sleep, tempDir, withApp } from './helpers.ts';
import { adminQuery, postgresOnly, sqliteOnly, storeLocation } from './engines.ts';
import { closeDoors, cookieOf, DOORS, get as getDoor, idOf, listenNode, serve as serveDoor, type Route } from './doors.ts';
import express5 from 'express';
import { sessions } from '../src/http/express.ts';
import type { CommitStore } from '../src/store/session-store.ts';
import { statements } from '../src/engines/postgres/statements.ts';
import { expiryPolicy } from '../src/store/expiry.ts';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);

test('put with an owner, patch an owner in; sessionsOf lists them newest first with handle, times and data', () =>
  withApp({ maxAge: 3600 }, async (app) => {
    const a = (await app.store.put(null, { device: 'laptop' }, { owner: 'ada' }))!;
    await sleep(5);
    const b = (await app.store.put(null, { device: 'phone' }))!;
    assert.ok(await app.store.patch(b, { owner: 'ada' }));
    await app.store.put(null, { device: 'other' }, { owner: 'grace' });
    const list = await app.store.sessionsOf('ada');
    assert.equal(
      list.map((s) => s.data.device),
      ['phone', 'laptop'],
      'most recently used first',
    );
    const [phone, laptop] = list;
    assert.ok(phone.touchedAt >= laptop.touchedAt);
    assert.ok(laptop.createdAt <= Date.now() && laptop.createdAt > Date.now() - 60_000);
    assert.is(laptop.expiresAt, laptop.touchedAt + 3600_000);
    assert.match(laptop.handle, /^h[A-Za-z0-9_-]{43}$/);
    assert.is.not(phone.handle, laptop.handle, 'distinct');
    assert.equal(
      (await app.store.sessionsOf('ada')).map((s) => s.handle),
      [phone.handle, laptop.handle],
      'stable',
    );
    for (const { handle } of list) {
      assert.not.ok([a, b].includes(handle), 'never the id');
      assert.is(await app.store.get(handle), null, 'a handle is not an id');
      assert.is(await app.store.get(handle.slice(1)), null, 'nor is the digest inside it');
    }
    assert.ok(await app.store.patch(b, { owner: null }));
    assert.equal(
      (await app.store.sessionsOf('ada')).map((s) => s.data.device),
      ['laptop'],
      'owner: null takes it away',
    );
    assert.equal(await app.store.get(b), { device: 'phone' }, 'the session itself stays');
    assert.equal(await app.store.sessionsOf('nobody'), []);
  }));

test('revoke ends one session, only for its owner; a bad handle is just not found', () =>
  withApp({}, async (app) => {
    const a = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
    const g = (await app.store.put(null, { n: 2 }, { owner: 'grace' }))!;
    const [ada] = await app.store.sessionsOf('ada');
    const [grace] = await app.store.sessionsOf('grace');
    assert.is(await app.store.revoke('ada', grace.handle), false, "ada cannot end grace's session");
    assert.equal(await app.store.get(g), { n: 2 });
    for (const bad of ['', 'h', 'x'.repeat(44), `h${'A'.repeat(42)}!`, a, `h${a}`, grace.handle.slice(0, -1)]) {
      assert.is(await app.store.revoke('ada', bad), false, JSON.stringify(bad));
    }
    assert.is(await app.store.revoke('ada', ada.handle), true);
    assert.is(await app.store.get(a), null, 'dead at once');
    assert.is(await app.store.patch(a, { set: { n: 9 } }), false, 'never brought back');
    assert.is(await app.store.put(a, { n: 9 }), null);
    assert.is(await app.store.revoke('ada', ada.handle), false, 'a second revoke finds nothing');
  }));

test('revokeAll ends every session of the owner but the one kept; counts them', () =>
  withApp({}, async (app) => {
    const mine = await Promise.all([1, 2, 3, 4].map((n) => app.store.put(null, { n }, { owner: 'ada' })));
    const other = (await app.store.put(null, { n: 5 }, { owner: 'grace' }))!;
    assert.is(await app.store.revokeAll('ada', { except: mine[0]! }), 3);
    assert.equal(await app.store.get(mine[0]!), { n: 1 });
    for (const id of mine.slice(1)) assert.is(await app.store.get(id!), null);
    assert.equal(await app.store.get(other), { n: 5 });
    assert.is(await app.store.revokeAll('ada'), 1);
    assert.is(await app.store.revokeAll('ada'), 0);
    assert.is(await app.store.revokeAll('grace', { except: 'not-an-id' }), 1);
  }));

test('an owner that is empty, too long or not a string is a TypeError naming the argument', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { n: 1 }))!;
    const bad: unknown[] = ['', 'x'.repeat(257), 42, null, undefined, {}, ['ada']];
    for (const owner of bad) {
      for (const [name, call] of [
        ['sessionsOf', () => app.store.sessionsOf(owner as string)],
        ['revoke', () => app.store.revoke(owner as string, 'h')],
        ['revokeAll', () => app.store.revokeAll(owner as string)],
        ['put', () => app.store.put(null, {}, { owner: owner as string })],
      ] as const) {
        // put's owner may be absent or null (no owner).
        if (name === 'put' && (owner === undefined || owner === null)) continue;
        const error = await call().then(
          () => null,
          (e: unknown) => e,
        );
        assert.instance(error, TypeError, `${name}(${JSON.stringify(owner)})`);
        assert.match((error as Error).message, /owner must be a non-empty string of at most 256 characters/);
      }
      if (owner !== null && owner !== undefined) {
        const error = await app.store.patch(id, { owner: owner as string }).then(
          () => null,
          (e: unknown) => e,
        );
        assert.instance(error, TypeError);
      }
    }
    assert.ok(await app.store.patch(id, { owner: 'x'.repeat(256) }), '256 characters is fine');
    assert.is((await app.store.sessionsOf('x'.repeat(256))).length, 1);
  }));

test('maxSessionsPerOwner: the least recently used beyond the cap go, in the transaction that adds one', () =>
  withApp({ maxSessionsPerOwner: 2, touchAfter: 0 }, async (app) => {
    const first = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
    await sleep(3);
    const second = (await app.store.put(null, { n: 2 }, { owner: 'ada' }))!;
    await sleep(3);
    await app.store.get(first); // first is now the more recently used
    await sleep(3);
    const third = (await app.store.put(null, { n: 3 }, { owner: 'ada' }))!;
    assert.is(await app.store.get(second), null, 'the least recently used went');
    assert.equal(await app.store.get(first), { n: 1 });
    assert.equal(await app.store.get(third), { n: 3 });
    // Given by patch, too; another owner is not touched.
    const grace = (await app.store.put(null, { n: 4 }, { owner: 'grace' }))!;
    await sleep(3);
    const fourth = (await app.store.put(null, { n: 5 }))!;
    assert.ok(await app.store.patch(fourth, { owner: 'ada' }));
    assert.equal(
      (await app.store.sessionsOf('ada')).map((s) => s.data.n),
      [5, 3],
    );
    assert.equal(await app.store.get(grace), { n: 4 });
  }));

test("maxSessionsPerOwner: giving the owner to a session that is gone or renewed ends none of the owner's sessions", () =>
  withApp({ maxSessionsPerOwner: 1 }, async (app) => {
    const only = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
    const gone = (await app.store.put(null, { n: 2 }))!;
    await app.store.delete(gone);
    assert.is(await app.store.patch(gone, { owner: 'ada' }), false);
    assert.is(await app.store.put(gone, { n: 3 }, { owner: 'ada' }), null);
    assert.is(await app.store.renew(gone, { owner: 'ada' }), null);
    const moved = (await app.store.put(null, { n: 4 }))!;
    assert.ok(await app.store.renew(moved));
    assert.is(await app.store.patch(moved, { owner: 'ada' }), false, 'a renewed id takes no owner');
    assert.equal(await app.store.get(only), { n: 1 }, "the owner's only session is still there");
    assert.is((await app.store.sessionsOf('ada')).length, 1);
  }));

test('owners whose names hold braces ({x}y, {x, {}, }{) are owners like any other: listed, swept, revoked', () =>
  withApp({}, async (app) => {
    for (const owner of ['{x}y', '{x', '{}', '}{']) {
      const a = (await app.store.put(null, { owner }, { owner }))!;
      const b = (await app.store.put(null, { owner }))!;
      assert.ok(await app.store.patch(b, { owner }));
      assert.is((await app.store.sessionsOf(owner)).length, 2, owner);
      await app.sweep();
      assert.is((await app.store.sessionsOf(owner)).length, 2, `${owner}, after a sweep`);
      assert.is(await app.store.revokeAll(owner, { except: a }), 1, owner);
      assert.equal(await app.store.get(a), { owner });
      assert.is(await app.store.get(b), null);
      assert.is(await app.store.revoke(owner, (await app.store.sessionsOf(owner))[0].handle), true);
      assert.is(await app.store.get(a), null);
      assert.equal(await app.store.sessionsOf(owner), []);
    }
  }));

test('calls made together take effect in the order made: a revoke, then a put of that session, stores nothing', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
    const [{ handle }] = await app.store.sessionsOf('ada');
    const [revoked, put, listed] = await Promise.all([
      app.store.revoke('ada', handle),
      app.store.put(id, { n: 2 }),
      app.store.sessionsOf('ada'),
    ]);
    assert.is(revoked, true);
    assert.is(put, null, 'the put came after the revoke');
    assert.equal(listed, []);
    assert.is(await app.store.get(id), null);
  }));

/** Runs `call` while the store actor is set to die right after the COMMIT of a batch carrying `op`. */
async function crashingAfterCommit<T>(dir: string, op: string, call: () => Promise<T>): Promise<T> {
  const file = join(dir, 'crash-after-commit');
  writeFileSync(file, op);
  const result = await call();
  assert.not.ok(existsSync(file), `the store actor crashed after committing "${op}"`);
  return result;
}

test('a crash after COMMIT, before the reply: create, owner change with the cap, revoke and revokeAll replay without harm', async () => {
  const temp = tempDir();
  process.env.SUPERVISED_SESSIONS_CRASH_AFTER_COMMIT = join(temp.dir, 'crash-after-commit');
  // Kept set while the test runs: every incarnation of the owner reads it.
  const app = await startSessionApp({
    ...(await storeLocation(temp.dir)),
    sweepSignal: false,
    maxSessionsPerOwner: 2,
    touchAfter: 0,
    restart: { intensity: 10 },
  });
  try {
    const created = await crashingAfterCommit(temp.dir, 'create', () => app.store.put(null, { n: 1 }, { owner: 'ada' }));
    assert.equal(await app.store.get(created!), { n: 1 }, 'the replayed create finds its own row');
    assert.is((await app.store.sessionsOf('ada')).length, 1, 'once');
    await sleep(3);
    const second = (await app.store.put(null, { n: 2 }, { owner: 'ada' }))!;
    await sleep(3);
    const third = (await app.store.put(null, { n: 3 }))!;
    assert.ok(await crashingAfterCommit(temp.dir, 'patch', () => app.store.patch(third, { owner: 'ada', set: { m: 1 } })));
    assert.equal(
      (await app.store.sessionsOf('ada')).map((s) => s.data),
      [{ n: 3, m: 1 }, { n: 2 }],
      'owner set once, the cap applied once',
    );
    const [, handle] = (await app.store.sessionsOf('ada')).map((s) => s.handle);
    const revoked = await crashingAfterCommit(temp.dir, 'revoke', () => app.store.revoke('ada', handle));
    assert.is(revoked, false, 'the replay finds it gone (documented)');
    assert.is(await app.store.get(second), null, 'and gone it is');
    const count = await crashingAfterCommit(temp.dir, 'revokeAll', () => app.store.revokeAll('ada'));
    assert.is(count, 0, 'the replay finds nothing left (documented)');
    assert.is(await app.store.get(third), null);
    assert.is(app.status().children.store.restarts, 4, 'four real crashes, each after a COMMIT');
  } finally {
    delete process.env.SUPERVISED_SESSIONS_CRASH_AFTER_COMMIT;
    await app.stop();
    temp.remove();
  }
});

test('an owner holding U+0000 is refused with a TypeError on every engine (PostgreSQL text cannot hold it)', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { n: 1 }))!;
    for (const call of [
      () => app.store.patch(id, { owner: 'a\u0000b' }),
      () => app.store.put(null, {}, { owner: 'a\u0000' }),
      () => app.store.sessionsOf('\u0000'),
    ]) {
      const error = await call().then(
        () => null,
        (e: unknown) => e,
      );
      assert.instance(error, TypeError);
      assert.match((error as Error).message, /U\+0000/);
    }
    assert.equal(await app.store.get(id), { n: 1 });
  }));

test('an owner with a lone surrogate is refused: it would be stored as U+FFFD and merge two owners', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { n: 1 }))!;
    for (const owner of ['a\uD800', 'a\uDBFF']) {
      const error = await app.store.patch(id, { owner }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.instance(error, TypeError);
      assert.match((error as Error).message, /well-formed/);
    }
  }));

test('replay: revokeAll and an owner change in flight at a crash of the store actor are replayed without harm', () =>
  withApp({}, async (app) => {
    const ids = await Promise.all([1, 2, 3].map((n) => app.store.put(null, { n }, { owner: 'ada' })));
    const loner = (await app.store.put(null, { n: 0 }))!;
    const revoked = app.store.revokeAll('ada', { except: ids[0]! });
    const owned = app.store.patch(loner, { owner: 'grace' });
    const killed = app.kill('store');
    const [count, patched] = await Promise.all([revoked, owned, killed]);
    assert.ok(count === 2 || count === 0, `2, or 0 when the reply was lost and the replay found them gone: ${count}`);
    assert.ok(patched);
    assert.equal(
      (await app.store.sessionsOf('ada')).map((s) => s.data.n),
      [1],
    );
    assert.equal(
      (await app.store.sessionsOf('grace')).map((s) => s.data.n),
      [0],
    );
    assert.is(app.status().children.store.restarts, 1);
  }));

sqliteOnly('the owner statements go through the owner index (query plans)', () =>
  withApp({}, async (_app, dir) => {
    const db = new DatabaseSync(join(dir, 'sessions.db'));
    try {
      for (const [name, sql] of Object.entries(
        ownerStatements('session', expiryPolicy({ maxAge: 86400, timestamp: 'relative', maxLifetime: null })),
      )) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((row) => row.detail).join(' | ');
        // revoke names its row by the primary key, and checks the owner on it.
        assert.match(
          plan,
          name === 'revoke'
            ? /SEARCH session USING INDEX sqlite_autoindex_session_1 \(sid_hash=\?\)/
            : /SEARCH session USING (COVERING )?INDEX session_owner \(owner=\?/,
          `${name}: ${plan}`,
        );
        assert.not.match(plan, /SCAN session/, `${name} never scans the table or a whole index: ${plan}`);
      }
    } finally {
      db.close();
    }
  }),
);

postgresOnly('the owner statements go through the owner index (query plans, PostgreSQL)', () =>
  withApp({}, async (app) => {
    const { table, database } = app.config;
    const sql = statements(table, expiryPolicy(app.config), app.config.maxSessionBytes);
    // Enough rows with and without owners that the plan is the index's own choice.
    await adminQuery(
      `INSERT INTO "${table}" (sid_hash, data, created_at, touched_at, owner)
      SELECT sha256(i::text::bytea), '{}', 0, (extract(epoch from now()) * 1000)::bigint, CASE WHEN i % 10 = 0 THEN 'u' || (i % 500) END
      FROM generate_series(1, 20000) AS i`,
      [],
      database,
    );
    await adminQuery(`ANALYZE "${table}"`, [], database);
    for (const [name, text, values] of [
      ['sessionsOf', sql.sessionsOf, ['u7']],
      ['revokeAll', sql.revokeAll, ['u7', null]],
      ['revoke', sql.revoke, [Buffer.alloc(32), 'u7']],
    ] as const) {
      const { rows } = await adminQuery(
        `EXPLAIN ${text}`.replace(/\$(\d)/g, (_, n: string) => {
          const value = values[Number(n) - 1];
          return value === null ? 'NULL::bytea' : Buffer.isBuffer(value) ? `'\\x${value.toString('hex')}'::bytea` : `'${value}'`;
        }),
        [],
        database,
      );
      const plan = rows.map((row: Record<string, string>) => row['QUERY PLAN']).join(' | ');
      // revoke may take either index: both name at most a few rows.
      assert.match(
        plan,
        name === 'revoke'
          ? new RegExp(`Index Scan using "?${table}_(pkey|owner)`)
          : new RegExp(`Index (Only )?Scan (Backward )?using "?${table}_owner|Bitmap Index Scan on "?${table}_owner`),
        `${name}: ${plan}`,
      );
      assert.not.match(plan, /Seq Scan/, `${name} never scans the table: ${plan}`);
    }
  }),
);

sqliteOnly('a 0.1.0 table is upgraded in place by autoSetup: every session kept, owners work', async () => {
  const temp = tempDir();
  try {
    const database = join(temp.dir, 'old.db');
    const written = await runScript(fixture('write-0.1.0.ts'), [database, 'session', '50']);
    assert.is(written.code, 0, written.stderr);
    const ids = JSON.parse(written.stdout) as string[];
    const refused = await startSessionApp({ database, autoSetup: false, sweepSignal: false }).catch((e: unknown) => e);
    assert.instance(refused, TableNotExistsError);
    assert.match((refused as Error).message, /supervised-sessions setup/);
    // Four processes start on the old table at once: one upgrades, none fails.
    const starts = await Promise.all([1, 2, 3, 4].map(() => runScript(fixture('start-app.ts'), [database], { timeoutMs: 30_000 })));
    assert.equal(
      starts.map((r) => r.stdout.trim()),
      ['ok', 'ok', 'ok', 'ok'],
      starts.map((r) => r.stderr).join('\n'),
    );
    const app = await startSessionApp({ database, autoSetup: false, sweepSignal: false });
    try {
      for (const [i, id] of ids.entries()) assert.equal(await app.store.get(id), { n: i, from: '0.1.0' });
      assert.ok(await app.store.patch(ids[0], { owner: 'ada' }));
      assert.is((await app.store.sessionsOf('ada')).length, 1);
    } finally {
      await app.stop();
    }
  } finally {
    temp.remove();
  }
});

sqliteOnly('setupStore upgrades a 0.1.0 table too, and is idempotent after', async () => {
  const temp = tempDir();
  try {
    const database = join(temp.dir, 'old.db');
    const ids = JSON.parse((await runScript(fixture('write-0.1.0.ts'), [database])).stdout) as string[];
    await setupStore({ database });
    await setupStore({ database });
    const db = new DatabaseSync(database);
    const columns = db
      .prepare(`SELECT name FROM pragma_table_info('session')`)
      .all()
      .map((row) => row.name);
    const indexes = db
      .prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'session'`)
      .all()
      .map((row) => row.name);
    const rows = Number((db.prepare('SELECT count(*) AS n FROM session').get() as { n: number }).n);
    db.close();
    assert.ok(columns.includes('owner'));
    assert.ok(indexes.includes('session_owner'));
    assert.is(rows, ids.length);
  } finally {
    temp.remove();
  }
});

// ── Through createHandler ──────────────────────────────────────────────────

async function serve(app: SessionApp, handler: SessionHandler): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(createHandler(app.store, handler, { onError: () => {} }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function get(url: string, cookie?: string) {
  const response = await request(url, { headers: cookie ? { cookie } : {}, headersTimeout: 5000, bodyTimeout: 5000 });
  const body = await response.body.text();
  const raw = response.headers['set-cookie'];
  const cookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return { status: response.statusCode, body, cookie: cookies.find((line) => line.startsWith('sid='))?.split(';')[0] };
}

test('Session: login with renew() + setOwner() on an existing session is one operation; owner loaded later; handle marks this device', () =>
  withApp({}, async (app) => {
    // An anonymous session of someone who was logged in as grace before.
    const anonymous = (await app.store.put(null, { cart: ['book'] }, { owner: 'grace' }))!;
    const seen: string[] = [];
    // The real store, with the write calls of its commit side recorded.
    const record = <T extends object>(target: T): T =>
      new Proxy(target, {
        get(inner, prop) {
          const value = Reflect.get(inner, prop) as unknown;
          if (typeof value !== 'function') return value;
          if (prop === 'renew' || prop === 'patch' || prop === 'put') {
            return (...args: unknown[]) => {
              seen.push(prop);
              return (value as (...a: unknown[]) => unknown).apply(inner, args);
            };
          }
          return (value as (...a: unknown[]) => unknown).bind(inner);
        },
      });
    const commitSide = record((app.store as unknown as { commit: object }).commit);
    const spy = new Proxy(app.store, {
      get(target, prop) {
        if (prop === 'commit') return commitSide;
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const spied = createServer(
      createHandler(
        spy,
        (_req, res, session) => {
          session.renew();
          session.setOwner('ada');
          session.set('since', 'login');
          res.end();
        },
        { onError: () => {} },
      ),
    );
    await new Promise<void>((resolve) => spied.listen(0, '127.0.0.1', resolve));
    try {
      const reply = await get(`http://127.0.0.1:${(spied.address() as AddressInfo).port}/`, `sid=${anonymous}`);
      assert.equal(seen, ['renew'], 'one store operation');
      const renewed = reply.cookie!.slice(4);
      assert.is.not(renewed, anonymous);
      assert.is(await app.store.get(anonymous), null, 'the old id is dead');
      assert.equal(await app.store.get(renewed), { cart: ['book'], since: 'login' }, 'data kept, change applied');
      assert.equal(await app.store.sessionsOf('grace'), [], 'never listed for the previous owner');
      assert.is((await app.store.sessionsOf('ada')).length, 1);
    } finally {
      await new Promise((resolve) => {
        spied.closeAllConnections();
        spied.close(resolve);
      });
    }
    const server = await serve(app, (req, res, session) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/login') {
        session.renew();
        session.setOwner(url.searchParams.get('user'));
      }
      res.end(JSON.stringify({ owner: session.owner, handle: session.handle, isNew: session.isNew }));
    });
    try {
      const login = await get(`${server.url}/login?user=lin`);
      const cookie = login.cookie!;
      assert.equal(JSON.parse(login.body), { owner: 'lin', handle: null, isNew: true }, 'no handle while the renew is pending');
      const list = await app.store.sessionsOf('lin');
      assert.is(list.length, 1);
      const again = JSON.parse((await get(`${server.url}/`, cookie)).body) as { owner: string; handle: string; isNew: boolean };
      assert.equal(again, { owner: 'lin', handle: list[0].handle, isNew: false }, 'the handle of this device is the one listed');
    } finally {
      await server.close();
    }
  }));

test('a request in flight with a revoked id never brings it back; its next request gets a fresh session', () =>
  withApp({}, async (app) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server = await serve(app, async (req, res, session) => {
      if (req.url === '/slow') {
        await gate;
        session.set('late', true);
        res.statusCode = 202;
      }
      res.end(JSON.stringify({ isNew: session.isNew, data: session.toJSON() }));
    });
    try {
      const id = (await app.store.put(null, { n: 1 }, { owner: 'ada' }))!;
      const slow = get(`${server.url}/slow`, `sid=${id}`);
      await sleep(50);
      assert.is(await app.store.revokeAll('ada'), 1);
      release();
      const reply = await slow;
      assert.is(reply.status, 202, 'the handler keeps its status');
      assert.is(await app.store.get(id), null, 'not brought back');
      const next = JSON.parse((await get(`${server.url}/`, `sid=${id}`)).body) as { isNew: boolean };
      assert.is(next.isNew, true);
    } finally {
      await server.close();
    }
  }));

test('session.setOwner validates, and a new session with only an owner is stored', () =>
  withApp({}, async (app) => {
    const codes: string[] = [];
    const server = await serve(app, (_req, res, session) => {
      for (const bad of ['', 'x'.repeat(257), 7]) {
        try {
          session.setOwner(bad as string);
          codes.push('none');
        } catch (error) {
          codes.push((error as Error).name);
        }
      }
      session.setOwner('ada');
      res.end();
    });
    try {
      const reply = await get(server.url);
      assert.equal(codes, ['TypeError', 'TypeError', 'TypeError']);
      assert.ok(reply.cookie, 'stored: it has an owner');
      assert.is((await app.store.sessionsOf('ada')).length, 1);
    } finally {
      await server.close();
    }
  }));

test('revokeAll: except takes an id, a Session (saved or not yet) or null; anything else is a TypeError naming options.except', () =>
  withApp({}, async (app) => {
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => app.store.put(null, { n }, { owner: 'ada' })));
    // A Session not yet saved (a fresh device) keeps nothing: it is stored afterwards.
    assert.is(await app.store.revokeAll('ada', { except: { id: null } }), 0 + 3);
    const [d, e] = await Promise.all([4, 5].map((n) => app.store.put(null, { n }, { owner: 'ada' })));
    assert.is(await app.store.revokeAll('ada', { except: { id: d } }), 1, 'a Session keeps its own id');
    assert.equal(await app.store.get(d!), { n: 4 });
    assert.is(await app.store.get(e!), null);
    assert.is(await app.store.revokeAll('ada', { except: null }), 1, 'null keeps none');
    for (const id of [a, b, c]) assert.is(await app.store.get(id!), null);
    const f = (await app.store.put(null, { n: 6 }, { owner: 'ada' }))!;
    for (const [bad, shown] of [
      [42, 'number'],
      [{}, 'an object without a session id'],
      [{ id: 7 }, 'an object without a session id'],
      [[f], 'an array'],
      [true, 'boolean'],
    ] as const) {
      const error = await app.store.revokeAll('ada', { except: bad as never }).then(
        () => null,
        (err: unknown) => err,
      );
      assert.instance(error, TypeError, JSON.stringify(bad));
      assert.is(
        (error as Error).message,
        `store.revokeAll(owner, options): options.except must be a session id, a Session or null, got ${shown}`,
      );
    }
    const unknown = await app.store.revokeAll('ada', { exept: f } as never).then(
      () => null,
      (err: unknown) => err,
    );
    assert.match((unknown as Error).message, /store\.revokeAll\(owner, options\): unknown key "exept"/);
    // A Session where { except: session } was meant: refused, never "revoke all".
    const typo = await app.store.revokeAll('ada', new Session(f, { n: 6 }) as never).then(
      () => null,
      (err: unknown) => err,
    );
    assert.instance(typo, TypeError);
    assert.is(
      (typo as Error).message,
      'store.revokeAll(owner, options): options must be { except? }, got a Session (did you mean { except: session }?)',
    );
    assert.equal(await app.store.get(f), { n: 6 }, 'a refused call ends nothing');
  }));

// "Log out other devices" at login, on every front door: a fresh device (no
// session yet, session.id null) and a known one; session.revokeOtherSessions()
// and store.revokeAll(owner, { except: session }).
for (const door of DOORS) {
  test(`${door}: log out other devices at login works on a fresh device and on a known one`, () =>
    withApp({}, async (app) => {
      const route: Route = async (session, q) => {
        if (q.has('self-revoked')) await app.store.delete(session.id!);
        // Another request gave this session to someone else meanwhile.
        if (q.has('reowned')) await app.store.patch(session.id!, { owner: 'zed' });
        if (q.has('disown')) session.setOwner(null);
        if (q.has('login')) {
          session.renew();
          session.setOwner(q.get('login'));
        }
        if (q.get('how') === 'session') session.revokeOtherSessions();
        if (q.get('how') === 'store') await app.store.revokeAll(session.owner ?? q.get('login')!, { except: session });
        if (q.has('drop')) session.drop();
        if (q.has('set')) session.set('k', q.get('set'));
        if (q.has('throw')) throw new Error('route bug');
        return { status: q.has('status') ? Number(q.get('status')) : 200, body: { owner: session.owner } };
      };
      const url = await serveDoor(door, route, {}, app.store);
      try {
        const devices = async (owner: string, n: number) =>
          (await Promise.all(Array.from({ length: n }, (_, i) => app.store.put(null, { device: i }, { owner })))) as string[];
        for (const how of ['session', 'store']) {
          const owner = `ada-${how}`;
          // A fresh device: no cookie.
          const others = await devices(owner, 2);
          const fresh = await getDoor(`${url}/?login=${owner}&how=${how}`);
          assert.is(fresh.status, 200, `${how}: fresh device`);
          const cookie = cookieOf(fresh)!;
          for (const id of others) assert.is(await app.store.get(id), null, `${how}: the other devices are logged out`);
          const list = await app.store.sessionsOf(owner);
          assert.is(list.length, 1, `${how}: only this device is left`);
          assert.ok(await app.store.get(idOf(cookie)), `${how}: this device's session is stored`);
          // A known device (an anonymous session with data) logging in again.
          const known = (await app.store.put(null, { cart: ['book'] }))!;
          const more = await devices(owner, 1);
          const again = await getDoor(`${url}/?login=${owner}&how=${how}`, `sid=${known}`);
          assert.is(again.status, 200, `${how}: known device`);
          const renewed = idOf(cookieOf(again)!);
          assert.is.not(renewed, known);
          assert.is(await app.store.get(known), null, 'the old id is dead');
          assert.equal(await app.store.get(renewed), { cart: ['book'] }, 'the data is kept');
          assert.is(await app.store.get(more[0]), null);
          assert.is(await app.store.get(idOf(cookie)), null, 'the first device is one of the others now');
          assert.equal(
            (await app.store.sessionsOf(owner)).map((s) => s.data),
            [{ cart: ['book'] }],
          );
        }
        // A logged-in device, no login: revokeOtherSessions alone (nothing else to write).
        const [mine, other] = await devices('lin', 2);
        const plain = await getDoor(`${url}/?how=session`, `sid=${mine}`);
        assert.is(plain.status, 200);
        assert.ok(await app.store.get(mine), 'this session stays');
        assert.is(await app.store.get(other), null, 'the other ends');
        // Log out everywhere: with drop(), every session of the owner ends.
        const [here, there] = await devices('kim', 2);
        const everywhere = await getDoor(`${url}/?how=session&drop`, `sid=${here}`);
        assert.is(everywhere.status, 200);
        assert.match(everywhere.cookies.join('\n'), /sid=;/, 'the cookie is expired');
        assert.equal(await app.store.sessionsOf('kim'), []);
        assert.is(await app.store.get(there), null);
        // An error page still logs the other devices out (like drop and renew); its data change is not stored.
        const [failing, elsewhere] = await devices('eve', 2);
        const error = await getDoor(`${url}/?how=session&set=v&status=500`, `sid=${failing}`);
        assert.is(error.status, 500);
        assert.is(await app.store.get(elsewhere), null);
        assert.equal(await app.store.get(failing), { device: 0 }, 'the data change of an error page is not stored');
        // A handler that throws after asking: a 500, and the other devices are still logged out.
        const [thrower, bystanderOfThrow] = await devices('ian', 2);
        const thrown = await getDoor(`${url}/?how=session&throw`, `sid=${thrower}`);
        assert.is(thrown.status, 500);
        assert.is(await app.store.get(bystanderOfThrow), null, 'a throw does not undo "log out other devices"');
        assert.equal(await app.store.get(thrower), { device: 0 });
        // A session revoked while its request ran ends no other session — nor does its "log out everywhere".
        const [revoked, survivor] = await devices('max', 2);
        const late = await getDoor(`${url}/?self-revoked&how=session`, `sid=${revoked}`);
        assert.is(late.status, 200);
        assert.equal(await app.store.get(survivor), { device: 1 }, 'a revoked session cannot log the others out');
        const [reowned, oldOwnersOther] = await devices('sam', 2);
        assert.is((await getDoor(`${url}/?reowned&how=session`, `sid=${reowned}`)).status, 200);
        assert.equal(
          await app.store.get(oldOwnersOther),
          { device: 1 },
          'a session given to another owner meanwhile ends none of the old one',
        );
        // Log out everywhere that also takes the owner away (setOwner(null), drop()): every session of the owner still ends.
        const [disowned, disownedOther] = await devices('lee', 2);
        assert.is((await getDoor(`${url}/?disown&how=session&drop`, `sid=${disowned}`)).status, 200);
        assert.equal(await app.store.sessionsOf('lee'), [], 'setOwner(null) before drop() does not cancel log out everywhere');
        assert.is(await app.store.get(disownedOther), null);
        const [revokedToo, survivorToo] = await devices('ned', 2);
        const lateEverywhere = await getDoor(`${url}/?self-revoked&how=session&drop`, `sid=${revokedToo}`);
        assert.is(lateEverywhere.status, 200);
        assert.equal(await app.store.get(survivorToo), { device: 1 }, 'nor log out everywhere');
        // A login as someone else whose page fails: setOwner is not stored, so the previous owner's devices are left alone.
        const [shared, previousOwnersOther] = await devices('amy', 2);
        const failedLogin = await getDoor(`${url}/?login=bob&how=session&status=500`, `sid=${shared}`);
        assert.is(failedLogin.status, 500);
        assert.equal(await app.store.get(previousOwnersOther), { device: 1 }, "amy's other device is not logged out by bob's failed login");
        assert.equal(await app.store.sessionsOf('bob'), []);
        // A session without an owner has no other sessions to end.
        const anonymous = (await app.store.put(null, { n: 1 }))!;
        const [bystander] = await devices('zoe', 1);
        assert.is((await getDoor(`${url}/?how=session&set=x`, `sid=${anonymous}`)).status, 200);
        assert.equal(await app.store.get(bystander), { device: 0 });
        assert.equal(await app.store.get(anonymous), { n: 1, k: 'x' });
      } finally {
        await closeDoors();
      }
    }));
}

test('revokeOtherSessions across rounds (createHandler, Express): it ends the sessions of the owner stored when it is committed; a throw once the commit began still applies it; after a setOwner an error page discards it ends none', () =>
  withApp({}, async (app) => {
    const devices = async (owner: string, n: number) =>
      (await Promise.all(Array.from({ length: n }, (_, i) => app.store.put(null, { device: i }, { owner })))) as string[];
    // Each step writes a chunk first, so what follows lands in the commit's next round.
    const handler: SessionHandler = async (req, res, session) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      if (q.has('status')) res.statusCode = Number(q.get('status'));
      const steps = (q.get('steps') ?? '').split('.');
      for (const [i, step] of steps.entries()) {
        if (step === 'revoke') session.revokeOtherSessions();
        if (step === 'own') session.setOwner(q.get('to'));
        if (step === 'throw') throw new Error('route bug');
        if (i < steps.length - 1) {
          res.write('x');
          await sleep(20);
        }
      }
      res.end('done');
    };
    const web = express5();
    web.use(sessions(app.store, { onError: () => {} }));
    web.use((req, res, next) => {
      Promise.resolve(handler(req, res, req.session)).catch(next);
    });
    const doors = [
      { name: 'createHandler', server: await serve(app, handler) },
      { name: 'express 5', server: { url: await listenNode(createServer(web)), close: closeDoors } },
    ];
    try {
      for (const { name, server } of doors) {
        // Committed before a later round's setOwner(bob): amy's other sessions end, not bob's.
        const [amyHere, amyThere] = await devices(`amy-${name}`, 2);
        const [bobThere] = await devices(`bob-${name}`, 1);
        const later = await get(`${server.url}/?steps=revoke.own&to=bob-${name}`, `sid=${amyHere}`);
        assert.is(later.status, 200, name);
        assert.is(await app.store.get(amyThere), null, `${name}: the owner stored when the revoke is committed`);
        assert.equal(await app.store.get(bobThere), { device: 0 }, name);
        assert.is((await app.store.sessionsOf(`bob-${name}`)).length, 2, `${name}: the session is bob's now`);
        // A throw once the commit began: the revoke taken in the first round still applies.
        const [kimHere, kimThere] = await devices(`kim-${name}`, 2);
        // (the headers are out by then: the response is cut short)
        await get(`${server.url}/?steps=revoke.throw`, `sid=${kimHere}`).catch(() => null);
        assert.is(await app.store.get(kimThere), null, `${name}: a throw after the first round does not undo the revoke`);
        assert.ok(await app.store.get(kimHere), name);
        // An error page that discards a setOwner of an earlier round: the revoke after it ends neither owner's devices.
        const [eveHere, eveThere] = await devices(`eve-${name}`, 2);
        const [malThere] = await devices(`mal-${name}`, 1);
        const failed = await get(`${server.url}/?status=500&steps=own.revoke&to=mal-${name}`, `sid=${eveHere}`);
        assert.is(failed.status, 500, name);
        assert.equal(await app.store.get(eveThere), { device: 1 }, `${name}: the previous owner's device survives`);
        assert.equal(await app.store.get(malThere), { device: 0 }, name);
        assert.equal(await app.store.sessionsOf(`mal-${name}`).then((list) => list.length), 1, `${name}: the session was not given to mal`);
      }
    } finally {
      for (const { server } of doors) await server.close();
    }
  }));

test('the guarded revoke (what revokeOtherSessions sends): nothing ends unless the kept session is a live session of that owner', () =>
  withApp({}, async (app) => {
    const commit = (app.store as unknown as { commit: CommitStore }).commit;
    const [a, b, c] = (await Promise.all([1, 2, 3].map((n) => app.store.put(null, { n }, { owner: 'ada' })))) as string[];
    const grace = (await app.store.put(null, { n: 4 }, { owner: 'grace' }))!;
    const renewedA = (await app.store.renew(a))!;
    assert.is(await commit.revokeOthers('ada', a), null, 'a renewed id (its tombstone) keeps nothing and ends nothing');
    assert.is(await commit.revokeOthers('ada', grace), null, "another owner's session ends nothing");
    assert.is(await commit.revokeOthers('ada', 'not-an-id'), null);
    await app.store.delete(c);
    assert.is(await commit.revokeOthers('ada', c), null, 'a deleted session ends nothing');
    for (const id of [renewedA, b]) assert.ok(await app.store.get(id), 'all still there');
    assert.is(await commit.revokeOthers('ada', renewedA), 1, 'a live session of the owner: the others end');
    assert.is(await app.store.get(b), null);
    assert.ok(await app.store.get(renewedA));
    assert.equal(await app.store.get(grace), { n: 4 });
    // A string where { except } was meant: refused, without echoing the id.
    const error = await app.store.revokeAll('ada', renewedA as never).then(
      () => null,
      (err: unknown) => err,
    );
    assert.instance(error, TypeError);
    assert.is(
      (error as Error).message,
      'store.revokeAll(owner, options): options must be { except? }, got a string (did you mean { except: id }?)',
    );
  }));

test.run();
