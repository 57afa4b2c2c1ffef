// The store contract (docs/store.md) through app.store on a real file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { startSessionApp, SessionTooLargeError, AppStoppedError, StoreUnavailableError, SessionError } from '../src/index.ts';
import { elapse, sleep, withApp } from './helpers.ts';
import { adminQuery, onPostgres, onRedis, redisDump, sqliteOnly } from './engines.ts';

test('put(null) creates a session with a 256-bit base64url id; get reads it back', () =>
  withApp({}, async (app) => {
    const id = await app.store.put(null, { user: 'ada', roles: ['admin'], n: 1.5, ok: true, none: null, nested: { a: [1, { b: 'c' }] } });
    assert.type(id, 'string');
    assert.match(id!, /^[A-Za-z0-9_-]{43}$/);
    assert.is(Buffer.from(id!, 'base64url').length, 32);
    assert.equal(await app.store.get(id!), { user: 'ada', roles: ['admin'], n: 1.5, ok: true, none: null, nested: { a: [1, { b: 'c' }] } });
    assert.is(await app.store.count(), 1);
    const other = await app.store.put(null, {});
    assert.is.not(other, id);
    assert.equal(await app.store.get(other!), {});
    assert.is(await app.store.count(), 2);
  }));

test('put on a live id replaces the data; on an unknown id stores nothing and resolves null', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { a: 1, b: 2 }))!;
    assert.is(await app.store.put(id, { c: 3 }), id);
    assert.equal(await app.store.get(id), { c: 3 });
    const unknown = 'A'.repeat(43);
    assert.is(await app.store.put(unknown, { x: 1 }), null);
    assert.is(await app.store.get(unknown), null);
    assert.is(await app.store.put('not-an-id', { x: 1 }), null);
    assert.is(await app.store.count(), 1);
  }));

test('get of an unknown or malformed id is null; a non-string id is a TypeError', () =>
  withApp({}, async (app) => {
    assert.is(await app.store.get('A'.repeat(43)), null);
    assert.is(await app.store.get(''), null);
    assert.is(await app.store.get('../../etc/passwd'), null);
    const error = await app.store.get(42 as unknown as string).catch((e: unknown) => e);
    assert.instance(error, TypeError);
  }));

test('relative: a read renews the timestamp (touchAfter 0); an idle session dies after maxAge, before any sweep', () =>
  withApp({ maxAge: 0.6, touchAfter: 0, cleanerInterval: 3600 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    await elapse(app, 350);
    assert.equal(await app.store.get(id), { a: 1 }, 'alive, and touched');
    await elapse(app, 350);
    assert.equal(await app.store.get(id), { a: 1 }, '700 ms after creation, 350 ms after the touch: alive');
    await elapse(app, 750);
    assert.is(await app.store.get(id), null, 'idle past maxAge: dead');
    assert.is(await app.store.count(), 0);
  }));

test('fixed: age counts from creation whatever the activity; put keeps the creation time', () =>
  withApp({ maxAge: 0.8, timestamp: 'fixed', cleanerInterval: 3600 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    for (let i = 0; i < 3; i++) {
      await elapse(app, 150);
      assert.ok(await app.store.get(id));
      assert.is(await app.store.put(id, { a: i }), id);
      assert.is(await app.store.patch(id, { set: { b: i } }), true);
    }
    await elapse(app, 600);
    assert.is(await app.store.get(id), null, 'dead 1 s after creation despite the activity');
    assert.is(await app.store.put(id, { back: true }), null);
  }));

test('touchAfter throttles the renewal: a read younger than touchAfter writes nothing', async () => {
  // Same sequence on two stores: created, read at 0.5 s, checked at 2.3 s (maxAge 2 s).
  const sequence = async (touchAfter: number) => {
    let result: unknown;
    await withApp({ maxAge: 2, touchAfter, cleanerInterval: 3600 }, async (app) => {
      const id = (await app.store.put(null, { a: 1 }))!;
      await elapse(app, 500);
      assert.ok(await app.store.get(id));
      await elapse(app, 1800);
      result = await app.store.get(id);
    });
    return result;
  };
  const [throttled, every] = await Promise.all([sequence(1.2), sequence(0)]);
  assert.is(throttled, null, 'the read at 0.5 s did not renew (younger than touchAfter 1.2 s): dead at 2.3 s');
  assert.equal(every, { a: 1 }, 'with touchAfter 0 the read at 0.5 s renewed it: alive at 2.3 s');
});

test('maxLifetime caps a session from creation, however active', () =>
  withApp({ maxAge: 60, touchAfter: 0, maxLifetime: 0.7, cleanerInterval: 3600 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    for (let i = 0; i < 4; i++) {
      await elapse(app, 120);
      assert.ok(await app.store.get(id), `alive at read ${i}`);
    }
    await elapse(app, 400);
    assert.is(await app.store.get(id), null);
    assert.is(await app.store.patch(id, { set: { b: 1 } }), false);
  }));

test('put, patch and renew never bring back a dead session', () =>
  withApp({ maxAge: 0.3, cleanerInterval: 3600 }, async (app) => {
    const ids = [(await app.store.put(null, { a: 1 }))!, (await app.store.put(null, { a: 2 }))!, (await app.store.put(null, { a: 3 }))!];
    await elapse(app, 450);
    assert.is(await app.store.put(ids[0], { back: 1 }), null);
    assert.is(await app.store.patch(ids[1], { set: { back: 1 } }), false);
    assert.is(await app.store.renew(ids[2]), null);
    for (const id of ids) assert.is(await app.store.get(id), null);
    assert.is(await app.store.count(), 0);
  }));

test('patch changes only the given keys; false when the session is gone', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { a: 1, b: 2, c: 3 }))!;
    assert.is(await app.store.patch(id, { set: { b: 20, d: { e: [4] } }, unset: ['c', 'missing'] }), true);
    assert.equal(await app.store.get(id), { a: 1, b: 20, d: { e: [4] } });
    await app.store.delete(id);
    assert.is(await app.store.patch(id, { set: { a: 9 } }), false);
    assert.is(await app.store.get(id), null, 'a patch does not recreate a deleted session');
  }));

test('parallel patches of different keys both keep their change', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { base: 0 }))!;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => app.store.patch(id, { set: { [`k${i}`]: i } })));
    assert.ok(results.every(Boolean));
    const data = (await app.store.get(id))!;
    assert.is(Object.keys(data).length, 51);
    for (let i = 0; i < 50; i++) assert.is(data[`k${i}`], i);
  }));

test('a "__proto__" key is stored as data and pollutes nothing', () =>
  withApp({}, async (app) => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const id = (await app.store.put(null, evil))!;
    assert.is(
      await app.store.patch(id, { set: JSON.parse('{"__proto__": {"polluted": 2}, "constructor": {"prototype": {"polluted": 3}}}') }),
      true,
    );
    const data = (await app.store.get(id))!;
    assert.equal(Object.keys(data).sort(), ['__proto__', 'constructor', 'ok']);
    assert.is(Object.getPrototypeOf(data), Object.prototype);
    assert.is(({} as Record<string, unknown>).polluted, undefined);
    assert.is((data as Record<string, unknown>).polluted, undefined);
  }));

test('renew moves a live session to a new id: data and creation time kept, old id dead at once', () =>
  withApp({ maxAge: 0.8, timestamp: 'fixed', cleanerInterval: 3600 }, async (app) => {
    const id = (await app.store.put(null, { user: 'ada' }))!;
    await elapse(app, 300);
    const next = await app.store.renew(id);
    assert.type(next, 'string');
    assert.is.not(next, id);
    assert.is(await app.store.get(id), null);
    assert.equal(await app.store.get(next!), { user: 'ada' });
    assert.is(await app.store.count(), 1);
    assert.is(await app.store.renew(id), null, 'the old id is gone');
    await elapse(app, 600);
    assert.is(await app.store.get(next!), null, 'the creation time came along: dead 0.8 s after the original creation');
  }));

test('calls on one session made in one turn (one batch) take effect in the order they were made, beside other sessions', () =>
  withApp({ touchAfter: 0 }, async (app) => {
    const id = (await app.store.put(null, { n: 0 }))!;
    const other = (await app.store.put(null, { o: 0 }))!;
    const s = app.store;
    const results = await Promise.all([
      s.get(id),
      s.patch(id, { set: { n: 1 } }),
      s.patch(other, { set: { o: 1 } }),
      s.get(id),
      s.patch(id, { set: { x: 1 }, unset: ['n'] }),
      s.put(id, { m: 2 }),
      s.get(other),
      s.get(id),
      s.put(null, { fresh: true }),
      s.delete(id),
      s.get(id),
      s.patch(id, { set: { late: 1 } }),
      s.put(id, { again: 1 }),
      s.get(other),
    ]);
    assert.equal(results.slice(0, 8), [{ n: 0 }, true, true, { n: 1 }, true, id, { o: 1 }, { m: 2 }]);
    assert.type(results[8], 'string');
    assert.equal(results.slice(9), [undefined, null, false, null, { o: 1 }]);
    assert.is(await s.get(id), null);
    assert.equal(await s.get(results[8] as string), { fresh: true });
  }));

test('calls on one session keep their order across turns, with batches in flight (on a network engine reads of other sessions pass them)', () =>
  withApp({ touchAfter: 0 }, async (app) => {
    const s = app.store;
    const model = await Promise.all(Array.from({ length: 8 }, async (_, n) => ({ id: (await s.put(null, { v: 0, n }))!, v: 0, n })));
    const seen: Array<Promise<unknown>> = [];
    const expected: unknown[] = [];
    const expect = (call: Promise<unknown>, value: unknown) => {
      seen.push(call);
      expected.push(value);
    };
    for (let turn = 1; turn <= 60; turn++) {
      // Each turn is a message of its own, sent while earlier ones are in flight.
      const one = model[turn % model.length];
      const other = model[(turn + 3) % model.length];
      expect(s.get(one.id), { v: one.v, n: one.n });
      expect(s.patch(one.id, { set: { v: turn } }), true);
      one.v = turn;
      expect(s.get(one.id), { v: turn, n: one.n });
      expect(s.get(other.id), { v: other.v, n: other.n });
      await new Promise((resolve) => setImmediate(resolve));
    }
    const gone = model[0];
    expect(s.get(gone.id), { v: gone.v, n: gone.n });
    expect(s.delete(gone.id), undefined);
    expect(s.get(gone.id), null);
    expect(s.patch(gone.id, { set: { v: -1 } }), false);
    assert.equal(await Promise.all(seen), expected);
  }));

test('patches of one session in one batch give what they give one by one, sizes included (a refused one in the middle, a later put)', () =>
  withApp({ maxSessionBytes: 400, touchAfter: 0 }, async (app) => {
    const id = (await app.store.put(null, {}))!;
    // The second patch does not fit after the first; the put after them replaces the data.
    const first = await Promise.allSettled([
      app.store.patch(id, { set: { a: 'x'.repeat(150) } }),
      app.store.patch(id, { set: { b: 'y'.repeat(300) } }),
      app.store.put(id, { z: 1 }),
    ]);
    assert.equal(
      first.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.is((first[0] as PromiseFulfilledResult<boolean>).value, true);
    assert.instance((first[1] as PromiseRejectedResult).reason, SessionTooLargeError);
    assert.is((first[2] as PromiseFulfilledResult<string>).value, id);
    assert.equal(await app.store.get(id), { z: 1 });
    // A patch that would not fit, then one that makes room: the first is refused, the second applies to what was stored.
    await app.store.put(id, { a: 'x'.repeat(150) });
    const second = await Promise.allSettled([
      app.store.patch(id, { set: { b: 'y'.repeat(300) } }),
      app.store.patch(id, { unset: ['a'] }),
      app.store.get(id),
    ]);
    assert.equal(
      second.map((r) => r.status),
      ['rejected', 'fulfilled', 'fulfilled'],
    );
    assert.instance((second[0] as PromiseRejectedResult).reason, SessionTooLargeError);
    assert.equal((second[2] as PromiseFulfilledResult<unknown>).value, {});
    // Merged and fitting: all of them stored, in order.
    const third = await Promise.all([
      app.store.patch(id, { set: { a: 1, b: 1 } }),
      app.store.patch(id, { unset: ['a'], set: { c: 1 } }),
      app.store.patch(id, { set: { a: 2 } }),
    ]);
    assert.equal(third, [true, true, true]);
    assert.equal(await app.store.get(id), { b: 1, c: 1, a: 2 });
  }));

test('renew with changes that unset a key holding U+0000 (it cannot be stored on any engine: a no-op)', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const next = await app.store.renew(id, { unset: ['a\u0000b'], set: { x: 1 } });
    assert.type(next, 'string');
    assert.equal(await app.store.get(next!), { a: 1, x: 1 });
  }));

test('delete is idempotent', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    await app.store.delete(id);
    await app.store.delete(id);
    await app.store.delete('whatever');
    assert.is(await app.store.get(id), null);
    assert.is(await app.store.count(), 0);
  }));

test('count counts live sessions only', () =>
  withApp({ maxAge: 0.4, cleanerInterval: 3600 }, async (app) => {
    await Promise.all(Array.from({ length: 5 }, () => app.store.put(null, { a: 1 })));
    await elapse(app, 500);
    await Promise.all(Array.from({ length: 3 }, () => app.store.put(null, { b: 1 })));
    assert.is(await app.store.count(), 3);
  }));

test('the database never holds a raw session id', () =>
  withApp({}, async (app, dir) => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await app.store.put(null, { i }))!);
    ids.push((await app.store.renew(ids[0]))!);
    await app.stop();
    let bytes: Buffer;
    if (onRedis) {
      // Every key of the store, every field and value, as Redis holds them.
      const dump = await redisDump(app.config.table, app.config.database);
      bytes = Buffer.from(dump.join('\n'));
      assert.ok(dump.length > 21 * 3, 'the dump holds the sessions');
      // The digests are in the key names, as base64url (on a cluster, after their group: the digest's first byte in hex).
      const named = createHash('sha256').update(ids[5]).digest('base64url');
      const group = createHash('sha256').update(ids[5]).digest('hex').slice(0, 2);
      assert.ok(dump.includes(`${app.config.table}:s:${named}`) || dump.includes(`${app.config.table}:s:{${group}}${named}`));
    } else if (onPostgres) {
      // Every row, every column, in PostgreSQL's text and binary forms.
      const { rows } = await adminQuery(`SELECT t::text AS text, sid_hash FROM "${app.config.table}" t`, [], app.config.database);
      bytes = Buffer.concat(rows.flatMap((row: { text: string; sid_hash: Buffer }) => [Buffer.from(row.text), row.sid_hash]));
      assert.is(rows.length, 21, "20 sessions, and the renewed id's tombstone (its digest only)");
    } else {
      bytes = readFileSync(join(dir, 'sessions.db'));
      if (existsSync(join(dir, 'sessions.db-wal'))) bytes = Buffer.concat([bytes, readFileSync(join(dir, 'sessions.db-wal'))]);
    }
    const text = bytes.toString('latin1');
    for (const id of ids) {
      assert.not.ok(text.includes(id), 'raw id found in the file');
      assert.not.ok(bytes.includes(Buffer.from(id, 'base64url')), 'raw id bytes found in the file');
    }
    // What is there instead: the SHA-256 digest (on Redis, in the key's name: checked above).
    if (!onRedis) assert.ok(bytes.includes(createHash('sha256').update(ids[5]).digest()));
  }));

test('only plain JSON is stored: anything else is a TypeError naming the key, nothing stored', () =>
  withApp({}, async (app) => {
    class Point {
      x = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: Array<[string, unknown]> = [
      ['u', undefined],
      ['f', () => 1],
      ['s', Symbol('x')],
      ['b', 10n],
      ['n', NaN],
      ['i', Infinity],
      ['d', new Date()],
      ['m', new Map()],
      ['set', new Set()],
      ['p', new Point()],
      ['c', cyclic],
      ['deep', { list: [1, { when: new Date() }] }],
    ];
    const id = (await app.store.put(null, { ok: 1 }))!;
    for (const [key, value] of bad) {
      const putError = await app.store.put(null, { [key]: value } as never).catch((e: unknown) => e);
      assert.instance(putError, TypeError, `put ${key}`);
      assert.match((putError as Error).message, new RegExp(`"${key}`));
      const patchError = await app.store.patch(id, { set: { [key]: value } as never }).catch((e: unknown) => e);
      assert.instance(patchError, TypeError, `patch ${key}`);
    }
    for (const data of [null, [], 'x', 1, new Map()]) {
      assert.instance(await app.store.put(null, data as never).catch((e: unknown) => e), TypeError);
    }
    assert.is(await app.store.count(), 1);
    assert.equal(await app.store.get(id), { ok: 1 });
  }));

test('a session over maxSessionBytes is refused with SessionTooLargeError and nothing stored', () =>
  withApp({ maxSessionBytes: 1000 }, async (app) => {
    const id = (await app.store.put(null, { small: 'x' }))!;
    const big = { blob: 'y'.repeat(2000) };
    const created = await app.store.put(null, big).catch((e: unknown) => e);
    assert.instance(created, SessionTooLargeError);
    assert.instance(created, SessionError);
    assert.is((created as SessionTooLargeError).code, 'ERR_SESSION_TOO_LARGE');
    assert.instance(await app.store.put(id, big).catch((e: unknown) => e), SessionTooLargeError);
    // Multi-byte characters count as bytes, not characters.
    assert.instance(await app.store.put(id, { s: 'é'.repeat(600) }).catch((e: unknown) => e), SessionTooLargeError);
    // A patch whose merged result is too large is refused by the owner.
    assert.is(await app.store.patch(id, { set: { part: 'z'.repeat(600) } }), true);
    assert.instance(await app.store.patch(id, { set: { more: 'w'.repeat(600) } }).catch((e: unknown) => e), SessionTooLargeError);
    assert.equal(Object.keys((await app.store.get(id))!).sort(), ['part', 'small']);
    assert.is(await app.store.count(), 1);
  }));

test('group commit: one failing request in a batch fails alone', () =>
  withApp({ maxSessionBytes: 500 }, async (app) => {
    const id = (await app.store.put(null, { a: 'x'.repeat(300) }))!;
    // Same event-loop turn: one mailbox message, one transaction.
    const [first, tooLarge, last] = await Promise.allSettled([
      app.store.put(null, { first: 1 }),
      app.store.patch(id, { set: { b: 'y'.repeat(300) } }),
      app.store.put(null, { last: 1 }),
    ]);
    assert.is(first.status, 'fulfilled');
    assert.is(last.status, 'fulfilled');
    assert.is(tooLarge.status, 'rejected');
    assert.instance((tooLarge as PromiseRejectedResult).reason, SessionTooLargeError);
    assert.equal(await app.store.get((first as PromiseFulfilledResult<string>).value), { first: 1 });
    assert.equal(await app.store.get((last as PromiseFulfilledResult<string>).value), { last: 1 });
    assert.equal(await app.store.get(id), { a: 'x'.repeat(300) });
  }));

test("':memory:' is a working, volatile store: gone when the store actor restarts", async () => {
  const app = await startSessionApp({ database: ':memory:', sweepSignal: false, maxAge: 0.3 });
  try {
    const id = (await app.store.put(null, { a: 1 }))!;
    assert.equal(await app.store.get(id), { a: 1 });
    const dead = (await app.store.put(null, { b: 1 }))!;
    await sleep(400);
    assert.is(await app.store.get(dead), null);
    assert.is((await app.sweep()).deleted, 2, 'the owner sweeps its own memory');
    const kept = (await app.store.put(null, { c: 1 }))!;
    await app.kill('store');
    assert.is(await app.store.get(kept), null, 'volatile: lost with the incarnation');
    assert.is(await app.store.count(), 0);
  } finally {
    await app.stop();
  }
});

test('stop(): accepted calls complete, later calls reject with AppStoppedError; idempotent', () =>
  withApp({}, async (app) => {
    const accepted = Array.from({ length: 100 }, (_, i) => app.store.put(null, { i }));
    const stopping = app.stop();
    assert.is(app.status().state, 'stopping');
    const late = await app.store.get('A'.repeat(43)).catch((e: unknown) => e);
    assert.instance(late, AppStoppedError);
    assert.is((late as AppStoppedError).code, 'ERR_SESSION_APP_STOPPED');
    const ids = await Promise.all(accepted);
    assert.ok(ids.every((id) => typeof id === 'string'));
    await stopping;
    await app.stop();
    assert.is(app.status().state, 'stopped');
    assert.equal(app.status().children.store, { state: 'stopped', restarts: 0, threadId: null });
    assert.instance(await app.store.put(null, {}).catch((e: unknown) => e), AppStoppedError);
    assert.instance(await app.sweep().catch((e: unknown) => e), AppStoppedError);
  }));

test('beyond the restart intensity the app fails loudly and calls reject at once', () =>
  withApp({ restart: { intensity: 1, period: 10 } }, async (app) => {
    const errors: Error[] = [];
    app.on('error', (error) => errors.push(error));
    const id = (await app.store.put(null, { a: 1 }))!;
    await app.kill('store');
    assert.equal(await app.store.get(id), { a: 1 });
    await app.kill('store');
    await sleep(50);
    assert.is(app.status().state, 'failed');
    assert.is(errors.length, 1);
    const started = Date.now();
    const error = await app.store.get(id).catch((e: unknown) => e);
    assert.instance(error, StoreUnavailableError);
    assert.ok(Date.now() - started < 100, 'rejected at once');
    await app.stop();
    assert.is(app.status().state, 'failed', 'stop keeps the failed state');
  }));

test('maxPendingCalls: one call more than may wait fails at once with StoreUnavailableError', () =>
  withApp({ maxPendingCalls: 3 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        app.store.get(id).then(
          () => 'ok',
          (e: unknown) => e,
        ),
      ),
    );
    assert.equal(results.slice(0, 3), ['ok', 'ok', 'ok']);
    for (const error of results.slice(3)) {
      assert.instance(error, StoreUnavailableError);
      assert.match((error as Error).message, /maxPendingCalls/);
    }
    assert.equal(await app.store.get(id), { a: 1 }, 'nothing stored was lost');
  }));

sqliteOnly('a read whose touch is due replies without waiting for that touch (another connection holds the write lock)', () =>
  withApp({ touchAfter: 0, requestTimeout: 3000 }, async (app, dir) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    await sleep(5);
    const other = new DatabaseSync(join(dir, 'sessions.db'));
    other.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE');
    try {
      const order: string[] = [];
      const read = app.store.get(id).then((data) => {
        order.push('read');
        return data;
      });
      // The lock is held 1.5 s; the touch waits for it, the reply must not.
      await Promise.race([read, sleep(1500)]);
      order.push('lock released');
      other.exec('COMMIT');
      assert.equal(await read, { a: 1 });
      assert.equal(order, ['read', 'lock released']);
    } finally {
      try {
        other.close();
      } catch {
        /* closed already */
      }
    }
  }),
);

test('a store call waits out a restart: killed owner, no caller sees it', () =>
  withApp({}, async (app) => {
    const id = (await app.store.put(null, { n: 0 }))!;
    const restarts: number[] = [];
    app.on('restart', (event) => restarts.push(event.restarts));
    const killing = app.kill('store');
    const reads = Array.from({ length: 20 }, () => app.store.get(id));
    await killing;
    assert.equal(await Promise.all(reads), Array(20).fill({ n: 0 }));
    assert.equal(restarts, [1]);
    assert.is(app.status().children.store.restarts, 1);
  }));

test.run();
