// Where sessions meet (contract, every engine, every front door): two
// requests of one browser, two app servers on one store, owner operations
// racing renews and logins. None may undo another's login or logout.
// test/run.ts runs this suite on SQLite (two apps on one file) and on
// PostgreSQL (two apps on one table).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSessionApp, createHandler, type SessionApp, type SessionAppConfig, type Session } from '../src/index.ts';
import { digest, newSessionId } from '../src/store/ids.ts';
import { elapse, sleep, tempDir } from './helpers.ts';
import { CLOCK, Clock } from '../src/runtime/clock.ts';
import { onPostgres, onRedis, postgresOnly, redisAgeTombstones, redisPauseWrites, sqlOnly, storeLocation } from './engines.ts';
import { closeDoors, cookieOf, DOORS, get, idOf, serve, type Reply, type Route } from './doors.ts';

const temp = tempDir();
/** Two app servers on one store. `app` reads with touchAfter 0.05 s, so a read after a short pause renews the stored timestamp. */
let app: SessionApp;
let other: SessionApp;
const started: SessionApp[] = [];

/** The clock each pair of apps shares (src/runtime/clock.ts): elapse() moves both on. */
const clocks = new Map<string, Clock>();

async function pair(name: string, config: SessionAppConfig = {}): Promise<[SessionApp, SessionApp]> {
  const location = await storeLocation(temp.dir, name);
  const clock = new Clock();
  clocks.set(name, clock);
  const withClock = { ...config, [CLOCK]: clock } as SessionAppConfig;
  const first = await startSessionApp({ ...location, sweepSignal: false, cleanerInterval: 3600, ...withClock });
  started.push(first);
  const second = await startSessionApp({ ...location, sweepSignal: false, cleanerInterval: 3600, ...withClock });
  started.push(second);
  return [first, second];
}

test.before(async () => {
  [app, other] = await pair('meet', { touchAfter: 0.05 });
});
test.after(async () => {
  await closeDoors();
  for (const each of started) await each.stop();
  temp.remove();
});

/** The call rejects with an error whose message matches. */
async function refused(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  const error = await call().then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.ok(error instanceof Error, 'the call rejected');
  assert.match(error.message, message);
}

/** The store's commit side (the request-commit core's view): replies that tell "renewed" from "gone". */
const commitSide = (target: SessionApp) =>
  (target.store as unknown as { commit: Record<string, (...args: unknown[]) => Promise<unknown>> }).commit;

/** A browser's cookie jar for one cookie name: responses applied in the order they arrive. */
function jar(start: string): { cookie: () => string; apply: (reply: Reply) => void } {
  let value = start;
  return {
    cookie: () => `sid=${value}`,
    apply(reply) {
      for (const line of reply.cookies) {
        if (!line.startsWith('sid=')) continue;
        const next = line.slice(4).split(';')[0];
        value = /Max-Age=0/i.test(line) ? '' : next;
      }
    },
  };
}

// ── Renewed is not gone (the store) ──────────────────────────────────────

test('a renewed id is told apart from a gone one: the old id reads and writes nothing, its tombstone survives a delete by the old id, the new session is untouched', async () => {
  const old = (await app.store.put(null, { cart: ['book'] }))!;
  const renewed = (await other.store.renew(old))!;
  assert.is(await app.store.get(old), null);
  assert.is(await app.store.patch(old, { set: { late: 1 } }), false, 'the public reply stays false');
  assert.is(await app.store.put(old, { late: 1 }), null);
  assert.is(await app.store.renew(old), null);
  const commit = commitSide(app);
  assert.is(await commit.load(old), 'renewed');
  assert.is(await commit.alive(old), 'renewed');
  assert.is(await commit.patch(old, { set: { late: 1 } }), 'renewed');
  assert.is(await commit.put(old, { late: 1 }), 'renewed');
  assert.is(await commit.renew(old), 'renewed');
  assert.is(await commit.delete(old), 'renewed');
  assert.is(await commit.load(old), 'renewed', 'a delete by the old id leaves the tombstone');
  assert.equal(await app.store.get(renewed), { cart: ['book'] }, 'nothing the old id did reached the renewed session');
  const gone = (await app.store.put(null, { n: 1 }))!;
  await app.store.delete(gone);
  assert.is(await commit.load(gone), null, 'a deleted id is gone, not renewed');
  assert.is(await commit.patch(gone, { set: { n: 2 } }), false);
});

/** Moves the store's tombstones' renew time `ms` into the past, as an outside writer would (the file, or the table). */
async function ageTombstones(target: SessionApp, ms: number): Promise<void> {
  if (onRedis) {
    await redisAgeTombstones(target.config.table, ms, target.config.database);
    return;
  }
  const sql = `UPDATE "${target.config.table}" SET touched_at = touched_at - ${ms} WHERE renewed_to IS NOT NULL`;
  if (onPostgres) {
    const client = new pg.Client({ connectionString: target.config.database });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
    return;
  }
  const db = new DatabaseSync(target.config.database);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

test('a renew() on a stale request once its headers are out throws ERR_SESSION_HEADERS_SENT, as on any request', async () => {
  const old = (await app.store.put(null, { n: 1 }))!;
  await other.store.renew(old);
  let code: unknown = null;
  const server = createServer(
    createHandler(
      app.store,
      (_req, res, session) => {
        res.writeHead(200);
        try {
          session.renew();
        } catch (error) {
          code = (error as { code?: string }).code;
        }
        res.end('ok');
      },
      { onError: () => {} },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const reply = await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, `sid=${old}`);
    assert.is(reply.status, 200);
    assert.is(code, 'ERR_SESSION_HEADERS_SENT');
    assert.equal(reply.cookies, []);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

// SQLite serialises writers (BEGIN IMMEDIATE): no write runs inside another's transaction there.
postgresOnly(
  'a write that waited for a concurrent renew of its row is told "renewed", not "gone" (PostgreSQL: the row is judged once locked)',
  async () => {
    const commit = commitSide(app);
    // Waves (patch, put, delete), and the statements of their own (an owner change, a login).
    for (const op of ['patch', 'put', 'delete', 'renew', 'patch owner', 'put owner', 'renew owner'] as const) {
      const old = (await app.store.put(null, { n: 1 }))!;
      const release = await holdRows(app, `sid_hash = '\\x${digest(old).toString('hex')}'::bytea`);
      const renewing = other.store.renew(old);
      await sleep(150);
      const late =
        op === 'patch'
          ? commit.patch(old, { set: { late: 1 } })
          : op === 'put'
            ? commit.put(old, { late: 1 })
            : op === 'delete'
              ? commit.delete(old)
              : op === 'renew'
                ? commit.renew(old)
                : op === 'patch owner'
                  ? commit.patch(old, { owner: 'late' })
                  : op === 'put owner'
                    ? commit.put(old, { late: 1 }, { owner: 'late' })
                    : commit.renew(old, { owner: 'late' });
      await sleep(150);
      await release();
      const renewed = await renewing;
      assert.is(await late, 'renewed', `${op} after the renew it waited for`);
      assert.equal(await app.store.get(renewed!), { n: 1 }, `${op}: the renewed session untouched`);
    }
    assert.equal(await app.store.sessionsOf('late'), [], 'no late write gave anything an owner');
  },
);

test('a request arriving with an id renewed more than 30 s ago gets a fresh session as for any dead cookie; one that loaded it before the renew is still told "renewed"', async () => {
  const [aged] = await pair('aged');
  const old = (await aged.store.put(null, { n: 1 }))!;
  const renewed = (await aged.store.renew(old))!;
  assert.is(await commitSide(aged).load(old), 'renewed', 'within the grace');
  await ageTombstones(aged, 31_000);
  assert.is(await commitSide(aged).load(old), null, 'past it, an arriving request finds the id unknown');
  assert.is(await commitSide(aged).patch(old, { set: { late: 1 } }), 'renewed', 'a request that loaded it before the renew is still told');
  // A planted, renewed cookie cannot keep a browser's anonymous session from being stored.
  const url = await serve('createHandler', site, { onError: () => {} }, aged.store);
  const reply = await get(`${url}/?set=cart&v=1`, `sid=${old}`);
  const fresh = cookieOf(reply);
  assert.ok(fresh && fresh !== `sid=${old}`, `a fresh session's cookie: ${reply.cookies}`);
  assert.equal(await aged.store.get(idOf(fresh!)), { cart: '1' });
  assert.equal(await aged.store.get(renewed), { n: 1 }, 'the renewed session untouched');
});

test('a tombstone lives as long as the old session would have, is not a live session, and is swept after', async () => {
  const [short] = await pair('short', { maxAge: 1, touchAfter: 0 });
  const old = (await short.store.put(null, { n: 1 }))!;
  const renewed = (await short.store.renew(old))!;
  assert.is(await short.store.count(), 1, 'the tombstone is not counted');
  assert.is(await commitSide(short).load(old), 'renewed');
  await elapse(clocks.get('short')!, 1300);
  assert.is(await commitSide(short).load(old), null, "past the old session's expiry the old id is simply gone");
  assert.is(await short.store.get(renewed), null);
  const report = await short.sweep();
  assert.is(report.deleted, 2, 'the dead session and the dead tombstone are swept');
});

// ── Renewed is not gone (every front door) ───────────────────────────────

/** Routes whose requests the test holds: `?hold=name` waits until release(name); `entered(name)` resolves once it loaded. */
const holds = new Map<string, { entered: () => void; wait: Promise<void>; release: () => void; seen: Promise<void> }>();
function hold(name: string) {
  let entered!: () => void;
  let release!: () => void;
  const seen = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const wait = new Promise<void>((resolve) => {
    release = resolve;
  });
  const entry = { entered, wait, release, seen };
  holds.set(name, entry);
  return entry;
}

const site: Route = async (session: Session, q) => {
  const held = q.get('hold');
  if (held) {
    const entry = holds.get(held)!;
    entry.entered();
    await entry.wait;
  }
  if (q.has('set')) session.set(q.get('set')!, q.get('v'));
  if (q.has('login')) {
    session.renew();
    session.setOwner(q.get('login')!);
    session.set('user', q.get('login'));
  }
  if (q.has('drop')) session.drop();
  if (q.has('throw')) throw new Error('route bug');
  return { status: q.has('status') ? Number(q.get('status')) : 200, body: { user: session.get('user') ?? null, isNew: session.isNew } };
};

let rounds = 0;

for (const door of DOORS) {
  test(`${door}: a request in flight while the browser logs in stores nothing and sends no cookie; the page after the login shows the user`, async () => {
    const url = await serve(door, site, { onError: () => {} }, app.store);
    const owner = `ada-${door}-${++rounds}`;
    const first = (await app.store.put(null, { cart: 1 }))!;
    const browser = jar(first);
    const slow = hold(`slow-${rounds}`);
    const inFlight = get(`${url}/?hold=slow-${rounds}&set=late&v=1`, browser.cookie());
    await slow.seen;
    const login = await get(`${url}/?login=${owner}`, browser.cookie());
    browser.apply(login);
    slow.release();
    const late = await inFlight;
    browser.apply(late);
    assert.is(late.status, 200, "the late response keeps its handler's status");
    assert.equal(
      late.cookies.filter((line) => line.startsWith('sid=')),
      [],
      'no Set-Cookie: neither an expiry nor the old id',
    );
    const next = await get(`${url}/`, browser.cookie());
    assert.equal(next.body, { user: owner, isNew: false }, 'the page after the login shows the user');
    const listed = await app.store.sessionsOf(owner);
    assert.is(listed.length, 1);
    assert.equal(listed[0].data, { cart: 1, user: owner }, 'the late request stored nothing, under either id');
    // A request that arrives later still with the old id (sent before the login's response) is just as harmless.
    const stale = await get(`${url}/?set=stale&v=1`, `sid=${first}`);
    assert.is(stale.status, 200);
    assert.equal(stale.cookies, [], 'a request with the renewed id gets no cookie');
    assert.equal((await app.store.sessionsOf(owner))[0].data, { cart: 1, user: owner });
    // A login on such a request is a login all the same: a new session, stored, with its cookie.
    const again = await get(`${url}/?login=${owner}`, `sid=${first}`);
    const fresh = cookieOf(again);
    assert.ok(fresh && fresh !== `sid=${first}`, `a new id: ${again.cookies}`);
    assert.equal(await app.store.get(idOf(fresh!)), { user: owner });
  });

  test(`${door}: with cookie.maxAge, a read whose load renewed the timestamp never re-sends an id another request renewed or dropped meanwhile`, async () => {
    const url = await serve(door, site, { onError: () => {}, cookie: { maxAge: 600 } }, app.store);
    for (const ending of ['renewed', 'dropped'] as const) {
      const first = (await app.store.put(null, { cart: 1 }))!;
      await sleep(80);
      const browser = jar(first);
      const slow = hold(`read-${++rounds}`);
      const inFlight = get(`${url}/?hold=read-${rounds}`, browser.cookie());
      await slow.seen;
      let expected: string;
      if (ending === 'renewed') {
        const login = await get(`${url}/?login=grace-${rounds}`, browser.cookie());
        browser.apply(login);
        expected = browser.cookie();
      } else {
        await other.store.delete(first);
        expected = 'sid=';
      }
      slow.release();
      const late = await inFlight;
      assert.ok(!late.cookies.some((line) => line.startsWith(`sid=${first}`)), `${ending}: the old id is not re-sent: ${late.cookies}`);
      browser.apply(late);
      assert.is(browser.cookie(), expected, `${ending}: the browser keeps what the other request gave it`);
    }
    // The control: the same read with nobody else in between re-sends the cookie.
    const live = (await app.store.put(null, { cart: 1 }))!;
    await sleep(80);
    const read = await get(`${url}/`, `sid=${live}`);
    assert.is(cookieOf(read), `sid=${live}`, 'a read that renewed the timestamp re-sends the live id');
  });

  test(`${door}: two logins at once on one cookie, on two app servers (a double submit): the browser ends up logged in, whichever response comes last`, async () => {
    const url = await serve(door, site, { onError: () => {} }, app.store);
    const otherUrl = await serve(door, site, { onError: () => {} }, other.store);
    for (const order of ['first', 'second'] as const) {
      const owner = `twice-${door}-${++rounds}`;
      const first = (await app.store.put(null, { cart: 1 }))!;
      const one = hold(`login-a-${rounds}`);
      const two = hold(`login-b-${rounds}`);
      const a = get(`${url}/?hold=login-a-${rounds}&login=${owner}`, `sid=${first}`);
      const b = get(`${otherUrl}/?hold=login-b-${rounds}&login=${owner}`, `sid=${first}`);
      await Promise.all([one.seen, two.seen]);
      one.release();
      two.release();
      const replies = await Promise.all([a, b]);
      const browser = jar(first);
      for (const reply of order === 'first' ? replies : [...replies].reverse()) browser.apply(reply);
      assert.ok(replies.every((reply) => reply.status === 200));
      const next = await get(`${url}/`, browser.cookie());
      assert.equal(
        next.body,
        { user: owner, isNew: false },
        `logged in, responses applied ${order} first: ${JSON.stringify(replies.map((r) => r.cookies))}`,
      );
    }
  });

  test(`${door}: a failed liveness check for the sliding cookie only skips the re-send`, async () => {
    let checks = 0;
    const failing = new Proxy(app.store, {
      get(target, prop) {
        if (prop === 'commit')
          return {
            ...commitSide(app),
            alive: () => {
              checks++;
              return Promise.reject(new Error('the check failed'));
            },
          };
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const told: string[] = [];
    const url = await serve(door, site, { onError: (error) => told.push(error.message), cookie: { maxAge: 600 } }, failing);
    const id = (await app.store.put(null, { cart: 1 }))!;
    await sleep(80);
    const read = await get(`${url}/`, `sid=${id}`);
    assert.is(read.status, 200);
    assert.is(checks, 1, 'the re-send was owed and checked');
    assert.equal(read.cookies, [], 'no re-send, and no error page');
    assert.equal(told, ['the check failed'], 'onError was told');
  });

  test(`${door}: drop() and renew() apply whatever the status; data changes are not stored behind a 5xx and are behind a 4xx`, async () => {
    const url = await serve(door, site, { onError: () => {} }, app.store);
    // "Logged out here, but the SSO logout failed": a deliberate 502.
    const out = (await app.store.put(null, { user: 'ada' }))!;
    const logout = await get(`${url}/?drop&status=502`, `sid=${out}`);
    assert.is(logout.status, 502);
    assert.match(logout.cookies.find((line) => line.startsWith('sid='))!, /^sid=;/, 'the cookie is expired');
    assert.is(await app.store.get(out), null, 'the session is deleted');
    // A route that throws after drop(): the error page, and the logout stands.
    const thrown = (await app.store.put(null, { user: 'ada' }))!;
    const crash = await get(`${url}/?drop&throw`, `sid=${thrown}`);
    assert.is(crash.status, 500);
    assert.is(await app.store.get(thrown), null, 'dropped although the route threw');
    // renew() before a 503: the new id goes out with it, the old id is dead.
    const moved = (await app.store.put(null, { n: 1 }))!;
    const renewing = await get(`${url}/?login=x-${door}&status=503`, `sid=${moved}`);
    assert.is(renewing.status, 503);
    const next = idOf(cookieOf(renewing)!);
    assert.is.not(next, moved);
    assert.is(await app.store.get(moved), null);
    assert.equal(
      await app.store.get(next),
      { n: 1 },
      "the id moved; the login's data and owner (data changes) were not stored behind the 5xx",
    );
    assert.equal(await app.store.sessionsOf(`x-${door}`), []);
    // Data changes: not behind a 5xx, stored behind a 4xx.
    const data = (await app.store.put(null, { n: 1 }))!;
    assert.is((await get(`${url}/?set=a&v=1&status=500`, `sid=${data}`)).status, 500);
    assert.equal(await app.store.get(data), { n: 1 });
    assert.is((await get(`${url}/?set=b&v=2&status=404`, `sid=${data}`)).status, 404);
    assert.equal(await app.store.get(data), { n: 1, b: '2' });
  });
}

// ── Owner operations are exact across app servers ────────────────────────

/** An outside connection holds rows of the store (PostgreSQL: `FOR UPDATE` on the rows `where` names; SQLite: the write lock). */
async function holdRows(target: SessionApp, where: string): Promise<() => Promise<void>> {
  // Redis runs one script at a time: holding back every write (CLIENT PAUSE) is its outside lock.
  if (onRedis) return redisPauseWrites(target.config.database);
  if (onPostgres) {
    const client = new pg.Client({ connectionString: target.config.database });
    await client.connect();
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM "${target.config.table}" WHERE ${where} FOR UPDATE`);
    return async () => {
      await client.query('COMMIT');
      await client.end();
    };
  }
  const db = new DatabaseSync(target.config.database);
  db.exec('BEGIN IMMEDIATE');
  return async () => {
    db.exec('COMMIT');
    db.close();
  };
}

test("revokeAll on one app server while another renews the owner's sessions in loops: 0 survivors in 30 rounds", async () => {
  let survivors = 0;
  for (let round = 0; round < 30; round++) {
    const owner = `loop-${round}`;
    let stop = false;
    const loops = await Promise.all(
      Array.from({ length: 4 }, async (_, n) => {
        let current = (await app.store.put(null, { round, n }, { owner }))!;
        return async () => {
          while (!stop) {
            const next = await other.store.renew(current);
            if (next === null) return current;
            current = next;
          }
          return current;
        };
      }),
    );
    const running = loops.map((loop) => loop());
    await sleep(round % 4);
    await app.store.revokeAll(owner);
    const left = await other.store.sessionsOf(owner);
    stop = true;
    const last = await Promise.all(running);
    const alive = await Promise.all(last.map((id) => other.store.get(id)));
    if (left.length > 0 || alive.some((data) => data !== null)) survivors++;
  }
  assert.is(survivors, 0, 'a resolved revokeAll leaves no session of the owner behind');
});

test("revokeAll while an outside lock holds a renew of the owner's session back: the renew waits or finds it gone; nothing survives", async () => {
  const owner = 'held-revoke';
  const id = (await app.store.put(null, { n: 1 }, { owner }))!;
  const release = await holdRows(app, `owner = '${owner}'`);
  // The renew reaches the row first, then revokeAll; both wait on the outside lock.
  const renewing = other.store.renew(id);
  await sleep(200);
  const revoking = app.store.revokeAll(owner);
  await sleep(200);
  await release();
  const [renewed] = await Promise.all([renewing, revoking]);
  assert.equal(await app.store.sessionsOf(owner), [], 'no session of the owner survives a resolved revokeAll');
  if (renewed !== null) assert.is(await app.store.get(renewed), null, 'not under the renewed id either');
});

test('revoke(owner, handle) of a session another app server renewed meanwhile ends it under its new id', async () => {
  const id = (await app.store.put(null, { n: 1 }, { owner: 'hopper' }))!;
  const [{ handle }] = await app.store.sessionsOf('hopper');
  const renewed = (await other.store.renew(id))!;
  assert.is(await app.store.revoke('hopper', handle), true);
  assert.is(await app.store.get(renewed), null);
  assert.equal(await app.store.sessionsOf('hopper'), []);
  const stranger = (await app.store.put(null, { n: 2 }, { owner: 'turing' }))!;
  const [{ handle: theirs }] = await app.store.sessionsOf('turing');
  await other.store.renew(stranger);
  assert.is(await app.store.revoke('hopper', theirs), false, "another owner's renewed session is left alone");
  assert.is((await app.store.sessionsOf('turing')).length, 1);
});

test('simultaneous logins on two app servers never leave an owner above maxSessionsPerOwner', async () => {
  const [one, two] = await pair('cap', { maxSessionsPerOwner: 2 });
  let worst = 0;
  for (let round = 0; round < 15; round++) {
    const owner = `cap-${round}`;
    await one.store.put(null, { first: true }, { owner });
    const anonymous = await Promise.all(Array.from({ length: 6 }, () => one.store.put(null, { anonymous: true })));
    await Promise.all(anonymous.map((id, n) => (n % 2 === 0 ? one : two).store.renew(id!, { owner })));
    worst = Math.max(worst, (await one.store.sessionsOf(owner)).length);
  }
  assert.is(worst, 2, 'never above the cap, and the cap filled');
});

test('simultaneous logins whose cap is held back by an outside lock, then released together: the cap still holds', async () => {
  const [one, two] = await pair('cap-held', { maxSessionsPerOwner: 1 });
  const owner = 'held';
  await one.store.put(null, { first: true }, { owner });
  const a = (await one.store.put(null, { n: 'a' }))!;
  const b = (await one.store.put(null, { n: 'b' }))!;
  // The outside connection holds the owner's one session, which both logins' caps delete: both are in flight at once.
  const release = await holdRows(one, `owner = '${owner}'`);
  const logins = Promise.all([one.store.renew(a, { owner }), two.store.renew(b, { owner })]);
  await sleep(300);
  await release();
  const [movedA, movedB] = await logins;
  assert.ok(movedA !== null && movedB !== null, 'both logins went through');
  const listed = await one.store.sessionsOf(owner);
  assert.is(listed.length, 1, `at most one: ${JSON.stringify(listed.map((s) => s.data))}`);
  assert.ok(listed[0].data.n === 'a' || listed[0].data.n === 'b', "the owner's older session went");
});

// ── The tombstone's column, added in place ───────────────────────────────

sqlOnly(
  "a table of the owners' layout (no renewed_to) is upgraded in place by autoSetup: every session kept, its owner too, renews leave tombstones",
  async () => {
    const location = await storeLocation(temp.dir, 'owners-layout');
    const table = location.table ?? 'session';
    const ddl = `CREATE TABLE "${table}" (sid_hash ${onPostgres ? 'bytea' : 'BLOB NOT NULL'} PRIMARY KEY, data ${onPostgres ? 'jsonb' : 'TEXT'} NOT NULL,
    created_at ${onPostgres ? 'bigint' : 'INTEGER'} NOT NULL, touched_at ${onPostgres ? 'bigint' : 'INTEGER'} NOT NULL, owner ${onPostgres ? 'text' : 'TEXT'})`;
    const ids = Array.from({ length: 20 }, () => newSessionId());
    const now = Date.now();
    if (onPostgres) {
      const client = new pg.Client({ connectionString: location.database });
      await client.connect();
      try {
        await client.query(ddl);
        for (const [n, id] of ids.entries()) {
          await client.query(`INSERT INTO "${table}" VALUES ($1, $2, $3, $3, $4)`, [
            digest(id),
            JSON.stringify({ n }),
            now,
            n % 2 ? 'ada' : null,
          ]);
        }
      } finally {
        await client.end();
      }
    } else {
      const db = new DatabaseSync(location.database);
      db.exec(ddl);
      const insert = db.prepare(`INSERT INTO "${table}" VALUES (?, ?, ?, ?, ?)`);
      for (const [n, id] of ids.entries()) insert.run(digest(id), JSON.stringify({ n }), now, now, n % 2 ? 'ada' : null);
      db.close();
    }
    const refused = await startSessionApp({ ...location, sweepSignal: false, autoSetup: false }).catch((error: unknown) => error as Error);
    assert.is((refused as Error).name, 'TableNotExistsError');
    assert.match((refused as Error).message, /supervised-sessions setup/);
    const upgraded = await startSessionApp({ ...location, sweepSignal: false, cleanerInterval: 3600 });
    started.push(upgraded);
    for (const [n, id] of ids.entries()) assert.equal(await upgraded.store.get(id), { n }, 'every session kept');
    assert.is((await upgraded.store.sessionsOf('ada')).length, 10, 'owners kept');
    const renewed = (await upgraded.store.renew(ids[1]))!;
    assert.is(await commitSide(upgraded).load(ids[1]), 'renewed');
    assert.is(await upgraded.store.count(), 20);
    assert.is(await upgraded.store.revokeAll('ada'), 10, 'the renewed one included');
    assert.is(await upgraded.store.get(renewed), null);
  },
);

// ── Strings are well-formed Unicode ──────────────────────────────────────

test('a lone UTF-16 surrogate is refused at put, patch and set, naming the key, before anything is sent; pairs are stored', async () => {
  const lone = JSON.parse('"\\ud800"') as string;
  const before = await app.store.count();
  await refused(() => app.store.put(null, { name: lone }), /"name".*well-formed/);
  await refused(() => app.store.put(null, { deep: { list: ['ok', lone] } }), /"deep\.list\[1\]"/);
  await refused(() => app.store.put(null, { [`k${lone}`]: 1 }), /key .*well-formed/);
  const id = (await app.store.put(null, { emoji: '😀' }))!;
  await refused(() => app.store.patch(id, { set: { name: lone } }), /"name"/);
  await refused(() => app.store.patch(id, { unset: [lone] }), /well-formed/);
  await refused(() => app.store.renew(id, { set: { name: lone } }), /"name"/);
  assert.equal(await app.store.get(id), { emoji: '😀' }, 'a surrogate pair round-trips; nothing else was stored');
  assert.is(await app.store.count(), before + 1);
  for (const door of DOORS) {
    const url = await serve(
      door,
      (session, q) => {
        session.set('comment', JSON.parse(q.get('json')!) as string);
        return { body: 'stored' };
      },
      { onError: () => {} },
      app.store,
    );
    const reply = await get(`${url}/?json=${encodeURIComponent('"\\udc00"')}`);
    assert.is(reply.status, 500, `${door}: the handler's set() threw`);
    assert.equal(reply.cookies, []);
  }
  assert.is(await app.store.count(), before + 1);
});

test("a put refused for size on the caller's side is counted in store_calls_total", async () => {
  const [small] = await pair('small', { maxSessionBytes: 100 });
  await refused(() => small.store.put(null, { blob: 'x'.repeat(500) }), /maxSessionBytes/);
  const id = (await small.store.put(null, { n: 1 }))!;
  await refused(() => small.store.put(id, { blob: 'x'.repeat(500) }), /maxSessionBytes/);
  const text = small.metrics();
  assert.match(text, /supervised_sessions_store_calls_total\{op="create",outcome="ERR_SESSION_TOO_LARGE"\} 1/);
  assert.match(text, /supervised_sessions_store_calls_total\{op="put",outcome="ERR_SESSION_TOO_LARGE"\} 1/);
});

test.run();
