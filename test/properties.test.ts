// Bad input, tried systematically (fast-check): cookies, session values, configs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startSessionApp, createHandler, ConfigError, type SessionApp } from '../src/index.ts';
import { sign } from '../src/http/signing.ts';
import { tempDir } from './helpers.ts';
import { inspect } from 'node:util';

const temp = tempDir();
let app: SessionApp;
let pool: Pool;
let closeServer: () => Promise<void>;
const SECRET = 'property secret';
let knownId = '';

test.before(async () => {
  app = await startSessionApp({ database: join(temp.dir, 'props.db'), sweepSignal: false });
  knownId = (await app.store.put(null, { owner: 'someone else' }))!;
  const server = createServer(
    createHandler(
      app.store,
      (_req, res, session) => {
        session.set('seen', true);
        res.end(JSON.stringify({ id: session.id, isNew: session.isNew }));
      },
      { secret: SECRET, onError: () => {} },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 8 });
  closeServer = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
});

test.after(async () => {
  await pool.close();
  await closeServer();
  await app.stop();
  temp.remove();
});

// Header values as a client may send them: printable ASCII and UTF-8 bytes
// (obs-text); CR, LF and NUL are refused by HTTP itself.
const headerText = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
    fc.string({ unit: 'grapheme', maxLength: 2 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
  ),
  maxLength: 300,
});

// Built once knownId exists (test.before), so the fragments are of a real id.
const cookieHeader = () =>
  fc.oneof(
    headerText,
    fc
      .array(fc.tuple(fc.oneof(fc.constant('sid'), fc.constantFrom('sid ', ' sid', 'SID', 'sid\t'), headerText), headerText), {
        maxLength: 12,
      })
      .map((pairs) => pairs.map(([name, value]) => `${name}=${value}`).join('; ')),
    // Fragments of real signed values: a known id with a cut, altered or foreign signature.
    fc.tuple(fc.nat({ max: 86 }), headerText).map(([cut, tail]) => `sid=${sign(knownId, SECRET).slice(0, cut)}${tail}`),
    fc.tuple(headerText).map(([garbage]) => `sid=${knownId}.${garbage}`),
    fc.constant(`sid=${knownId}`),
    fc.nat({ max: 40 }).map((n) => Array.from({ length: n }, (_, i) => `sid=${i % 2 ? knownId : 'x'}`).join('; ')),
    fc.integer({ min: 1000, max: 7000 }).map((size) => `sid=${'a'.repeat(size)}`),
  );

test('random cookie headers: never a crash or a 500, never an adopted id', async () => {
  await fc.assert(
    fc.asyncProperty(cookieHeader(), async (cookie) => {
      const response = await pool.request({ path: '/', method: 'GET', headers: { cookie } });
      const body = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`status ${response.statusCode} for cookie ${inspect(cookie)}: ${body}`);
      const { isNew } = JSON.parse(body) as { isNew: boolean };
      assert.ok(isNew, 'no forged cookie finds a session');
      // The id the server issued, as the client sees it: `sid=<id>.<signature>`.
      const setCookie = String(response.headers['set-cookie']);
      const id = /^sid=([A-Za-z0-9_-]{43})\./.exec(setCookie)?.[1];
      assert.ok(id, `a fresh signed cookie: ${setCookie}`);
      assert.is.not(id, knownId, 'the client id is never adopted');
      assert.not.ok(cookie.includes(id!), 'the issued id is fresh, not taken from the request');
    }),
    { numRuns: 300 },
  );
  assert.equal(await app.store.get(knownId), { owner: 'someone else' }, 'the other session is untouched');
});

test('oversized request headers are refused by node:http before any store call', async () => {
  const before = await app.store.count();
  const response = await pool
    .request({ path: '/', method: 'GET', headers: { cookie: `sid=${'z'.repeat(70_000)}` } })
    .catch((error: unknown) => error);
  if (!(response instanceof Error)) {
    assert.is((response as { statusCode: number }).statusCode, 431);
    await (response as { body: { dump(): Promise<void> } }).body.dump();
  }
  assert.is(await app.store.count(), before);
});

test('slow clients do not hold the store: others are served meanwhile', async () => {
  // A server whose handler reads the whole body before answering, like a form handler.
  const server = createServer(
    createHandler(
      app.store,
      async (req, res, session) => {
        let body = '';
        for await (const chunk of req) body += chunk;
        session.set('body', body.length);
        res.end('ok');
      },
      { onError: () => {} },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const cookie = (await (await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x' })).headers.get('set-cookie'))!.split(';')[0];
  // 20 slow clients: headers with a session cookie, then a body trickling in.
  const { connect } = await import('node:net');
  const slow = Array.from({ length: 20 }, () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nContent-Length: 10\r\n\r\na`);
    return socket;
  });
  try {
    const fast = new Pool(`http://127.0.0.1:${port}`, { connections: 4 });
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      const response = await fast.request({ path: '/', method: 'POST', body: 'y', headers: { cookie } });
      assert.is(response.statusCode, 200);
      await response.body.dump();
    }
    const took = performance.now() - started;
    await fast.close();
    assert.ok(took < 5000, `100 requests of another client took ${took.toFixed(0)} ms while 20 clients trickled`);
    assert.is((await app.store.get(cookie.split('=')[1]))?.body, 1, "the fast client's writes went through");
  } finally {
    for (const socket of slow) socket.destroy();
    server.closeAllConnections();
    server.close();
  }
});

/** True when a value is what docs/store.md calls plain JSON. */
function isPlainJson(value: unknown, seen = new Set<unknown>()): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  const proto = Object.getPrototypeOf(value);
  const ok = Array.isArray(value)
    ? value.every((item) => isPlainJson(item, seen)) && Object.keys(value).length === value.length
    : (proto === Object.prototype || proto === null) &&
      Object.getOwnPropertySymbols(value).length === 0 &&
      Object.values(value).every((item) => isPlainJson(item, seen));
  seen.delete(value);
  return ok;
}

test('random session values either round-trip exactly or are refused with a TypeError', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.jsonValue(),
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withTypedArray: true,
          withSparseArray: true,
          withBoxedValues: true,
        }),
      ),
      async (value) => {
        const data = { v: value } as never;
        const result = await app.store.put(null, data).then(
          (id) => ({ id }),
          (error: unknown) => ({ error }),
        );
        if ('error' in result) {
          assert.instance(result.error, TypeError, `refused with ${String(result.error)}`);
          assert.not.ok(isPlainJson(value), `a plain JSON value was refused: ${inspect(value)}`);
          return;
        }
        assert.ok(isPlainJson(value), 'a non-JSON value was accepted');
        const stored = await app.store.get(result.id!);
        assert.is(JSON.stringify(stored), JSON.stringify({ v: value }), 'round trip');
        await app.store.delete(result.id!);
      },
    ),
    { numRuns: 400 },
  );
});

const configKeys = [
  'database',
  'table',
  'maxAge',
  'timestamp',
  'cleanerInterval',
  'sweepSignal',
  'autoSetup',
  'restart',
  'shutdownTimeout',
  'requestTimeout',
  'durability',
  'maxSessionBytes',
  'touchAfter',
  'maxLifetime',
];

test('random configs either start or are refused with a ConfigError naming a key', async () => {
  const cwd = process.cwd();
  process.chdir(temp.dir);
  try {
    const value = fc.oneof(
      fc.anything(),
      fc.double(),
      fc.integer(),
      fc.constantFrom('relative', 'fixed', 'normal', 'full', 'SIGUSR1', 'SIGKILL', 'SIGTERM', 'ok_table'),
    );
    // Databases only where a file may be made: the temp dir, memory, or
    // places that cannot be opened (a missing folder, a directory).
    const database = fc.oneof(
      fc.constant(join(temp.dir, 'cfg.db')),
      fc.constant(':memory:'),
      fc.constant(join(temp.dir, 'missing', 'x.db')),
      fc.constant(temp.dir),
      fc.constant(''),
      fc.integer(),
      fc.constant(null),
    );
    const config = fc
      .tuple(
        database,
        fc.dictionary(fc.oneof(fc.constantFrom(...configKeys.filter((k) => k !== 'database')), fc.string({ maxLength: 8 })), value, {
          maxKeys: 4,
        }),
      )
      .map(([db, raw]) => ({ ...raw, database: db }));
    let started = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(config, async (input) => {
        const outcome = await startSessionApp(input as never).then(
          (a) => ({ app: a }),
          (error: unknown) => ({ error }),
        );
        if ('error' in outcome) {
          assert.instance(outcome.error, ConfigError, String(outcome.error));
          const key = (outcome.error as ConfigError).key;
          assert.ok(
            (outcome.error as Error).message.includes(`"${key}"`),
            `the message names the key: ${(outcome.error as Error).message}`,
          );
          refused++;
          return;
        }
        started++;
        await outcome.app.stop();
      }),
      { numRuns: 120 },
    );
    assert.ok(started > 0 && refused > 0, `both outcomes were exercised (${started} started, ${refused} refused)`);
  } finally {
    process.chdir(cwd);
  }
});

test.run();
