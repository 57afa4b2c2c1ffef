// createHandler against real node:http servers on 127.0.0.1, driven by undici.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import {
  startSessionApp,
  createHandler,
  ConfigError,
  type SessionApp,
  type SessionHandler,
  type HandlerOptions,
  type SessionStore,
} from '../src/index.ts';
import { sign } from '../src/http/signing.ts';
import { sleep, tempDir } from './helpers.ts';
import { storeLocation } from './engines.ts';

const temp = tempDir();
let app: SessionApp;
const servers: Array<() => Promise<void>> = [];

test.before(async () => {
  app = await startSessionApp({ ...(await storeLocation(temp.dir, 'http')), sweepSignal: false });
});
test.after(async () => {
  for (const close of servers) await close();
  await app.stop();
  temp.remove();
});

async function serve(handler: SessionHandler, options?: HandlerOptions, store: SessionStore = app.store): Promise<string> {
  const server = createServer(createHandler(store, handler, options));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Reply {
  status: number;
  body: string;
  cookies: string[];
  headers: Record<string, string | string[] | undefined>;
}

async function get(url: string, cookie?: string): Promise<Reply> {
  const response = await request(url, { headers: cookie ? { cookie } : {} });
  const body = await response.body.text();
  const raw = response.headers['set-cookie'];
  return {
    status: response.statusCode,
    body,
    cookies: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw],
    headers: response.headers,
  };
}

/** The value of our cookie in a reply, as the client would send it back. */
function cookieOf(reply: Reply, key = 'sid'): string {
  const line = reply.cookies.find((value) => value.startsWith(`${key}=`));
  assert.ok(line, `a Set-Cookie for ${key}: ${JSON.stringify(reply.cookies)}`);
  return line!.split(';')[0];
}
const idOf = (cookie: string) => cookie.split('=')[1].split('.')[0];

/** A small app: /set?k=v, /get?k, /del?k, /clear, /renew, /drop, /none. */
const kv: SessionHandler = async (req, res, session) => {
  const url = new URL(req.url!, 'http://x');
  const key = url.searchParams.get('k') ?? 'k';
  switch (url.pathname) {
    case '/set':
      session.set(key, url.searchParams.get('v'));
      break;
    case '/del':
      session.delete(key);
      break;
    case '/clear':
      session.clear();
      break;
    case '/renew':
      session.renew();
      break;
    case '/drop':
      session.drop();
      break;
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ id: session.id, isNew: session.isNew, data: session.toJSON() }));
};

test('a new session: stored before the response, cookie with the default attributes', async () => {
  const url = await serve(kv);
  const reply = await get(`${url}/set?k=name&v=ada`);
  assert.is(reply.status, 200);
  const cookie = cookieOf(reply);
  const line = reply.cookies[0];
  assert.match(line, /; Path=\//);
  assert.match(line, /; HttpOnly/);
  assert.match(line, /; SameSite=Lax/);
  assert.not.match(line, /Secure/);
  assert.not.match(line, /Max-Age|Expires/, 'a browser-session cookie by default');
  const id = idOf(cookie);
  assert.match(id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(await app.store.get(id), { name: 'ada' }, 'committed before the response completed');
  assert.equal(JSON.parse(reply.body).isNew, true);
});

test('reading, updating and deleting keys of an existing session; unmodified responses set no cookie', async () => {
  const url = await serve(kv);
  const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
  const read = await get(`${url}/get`, cookie);
  assert.equal(JSON.parse(read.body).data, { a: '1' });
  assert.is(JSON.parse(read.body).isNew, false);
  assert.equal(read.cookies, [], 'no Set-Cookie for an unmodified session');
  const update = await get(`${url}/set?k=b&v=2`, cookie);
  assert.equal(update.cookies, [], 'the id is not new: no Set-Cookie');
  await get(`${url}/del?k=a`, cookie);
  assert.equal(await app.store.get(idOf(cookie)), { b: '2' });
});

test('clear() stores an empty session under the same id', async () => {
  const url = await serve(kv);
  const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
  await get(`${url}/set?k=b&v=2`, cookie);
  const cleared = await get(`${url}/clear`, cookie);
  assert.is(cleared.status, 200);
  assert.equal(await app.store.get(idOf(cookie)), {});
});

test('renew(): a new id in the cookie, data kept, the old id dead', async () => {
  const url = await serve(kv);
  const cookie = cookieOf(await get(`${url}/set?k=user&v=ada`));
  const renewed = await get(`${url}/renew`, cookie);
  const next = cookieOf(renewed);
  assert.is.not(idOf(next), idOf(cookie));
  assert.is(await app.store.get(idOf(cookie)), null);
  assert.equal(await app.store.get(idOf(next)), { user: 'ada' });
  const old = await get(`${url}/get`, cookie);
  assert.is(JSON.parse(old.body).isNew, true, 'the old cookie no longer finds a session');
});

test('drop(): deleted from the store and the cookie expired', async () => {
  const url = await serve(kv);
  const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
  const dropped = await get(`${url}/drop`, cookie);
  assert.is(dropped.status, 200);
  assert.match(dropped.cookies[0], /^sid=;/);
  assert.match(dropped.cookies[0], /Max-Age=0|Expires=Thu, 01 Jan 1970/);
  assert.is(await app.store.get(idOf(cookie)), null);
});

test('cookie options: name, secure, domain, path, sameSite, maxAge', async () => {
  const url = await serve(kv, {
    key: '_app_key',
    cookie: { secure: true, domain: 'example.test', path: '/app', sameSite: 'strict', maxAge: 3600 },
  });
  const reply = await get(`${url}/set?k=a&v=1`);
  const line = reply.cookies[0];
  assert.match(line, /^_app_key=[A-Za-z0-9_-]{43};/);
  for (const part of ['Secure', 'Domain=example.test', 'Path=/app', 'SameSite=Strict', 'Max-Age=3600', 'HttpOnly'])
    assert.ok(line.includes(part), `${part} in ${line}`);
});

test('signed cookies: id.signature; a bad signature is a fresh session; secrets rotate', async () => {
  const old = await serve(kv, { secret: 'old secret' });
  const cookie = cookieOf(await get(`${old}/set?k=a&v=1`));
  const [id, signature] = cookie.split('=')[1].split('.');
  assert.match(signature, /^[A-Za-z0-9_-]{43}$/);
  assert.is(`${id}.${signature}`, sign(id, 'old secret'));
  assert.equal(JSON.parse((await get(`${old}/get`, cookie)).body).data, { a: '1' });
  // The bare id, or a wrong signature, is not accepted when signing is on.
  for (const forged of [`sid=${id}`, `sid=${id}.${'A'.repeat(43)}`, `sid=${sign(id, 'guess')}`, `sid=${id}.`]) {
    assert.is(JSON.parse((await get(`${old}/get`, forged)).body).isNew, true, forged);
  }
  // Rotation: the new secret signs, the old one still verifies.
  const rotated = await serve(kv, { secret: ['new secret', 'old secret'] });
  const read = await get(`${rotated}/get`, cookie);
  assert.equal(JSON.parse(read.body).data, { a: '1' });
  const renewed = cookieOf(await get(`${rotated}/renew`, cookie));
  const newId = idOf(renewed);
  assert.is(renewed.split('=')[1], sign(newId, 'new secret'));
});

test('forged, malformed, unknown and dead cookies are never adopted', async () => {
  const url = await serve(kv);
  const unknown = 'B'.repeat(43);
  const forged = [
    `sid=${unknown}`,
    'sid=short',
    'sid=',
    'sid=%%%',
    `sid=${'A'.repeat(42)}!`,
    `sid="${unknown}"`,
    'garbage',
    `sid=${unknown}; sid=${unknown}`,
  ];
  for (const cookie of forged) {
    const reply = await get(`${url}/set?k=a&v=1`, cookie);
    assert.is(reply.status, 200, cookie);
    const issued = idOf(cookieOf(reply));
    assert.is.not(issued, unknown, `adopted ${cookie}`);
    assert.match(issued, /^[A-Za-z0-9_-]{43}$/);
    assert.is(await app.store.get(unknown), null);
  }
  const shortLived = await startSessionApp({ ...(await storeLocation(temp.dir, 'dead')), maxAge: 0.2, sweepSignal: false });
  try {
    const deadUrl = await serve(kv, undefined, shortLived.store);
    const cookie = cookieOf(await get(`${deadUrl}/set?k=a&v=1`));
    await sleep(300);
    const reply = await get(`${deadUrl}/set?k=b&v=2`, cookie);
    assert.is.not(idOf(cookieOf(reply)), idOf(cookie), 'a dead id is not revived');
    assert.equal(JSON.parse(reply.body).data, { b: '2' });
  } finally {
    await shortLived.stop();
  }
});

test('a session id in the URL is never read', async () => {
  const url = await serve(kv);
  const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
  const id = idOf(cookie);
  const reply = await get(`${url}/get?sid=${id}&session=${id}`);
  assert.is(JSON.parse(reply.body).isNew, true);
});

test('an untouched session gets no cookie and costs no store call', async () => {
  const calls: string[] = [];
  const counting = new Proxy(app.store, {
    get(target, name) {
      const value = Reflect.get(target, name);
      return typeof value === 'function'
        ? (...args: unknown[]) => {
            calls.push(String(name));
            return value.apply(target, args);
          }
        : value;
    },
  });
  const url = await serve(
    (_req, res) => {
      res.end('hello');
    },
    undefined,
    counting,
  );
  const reply = await get(url);
  assert.is(reply.body, 'hello');
  assert.equal(reply.cookies, []);
  assert.equal(calls, []);
  const readOnly = await serve(
    (_req, res, session) => {
      res.end(String(session.get('x')));
    },
    undefined,
    counting,
  );
  assert.equal((await get(readOnly)).cookies, []);
  assert.equal(calls, []);
});

test("the handler's own Set-Cookie headers are kept beside the session cookie", async () => {
  const url = await serve((_req, res, session) => {
    res.setHeader('Set-Cookie', ['theme=dark; Path=/']);
    session.set('a', 1);
    res.writeHead(201, { 'Set-Cookie': 'lang=en; Path=/', 'content-type': 'text/plain' });
    res.end('created');
  });
  const reply = await get(url);
  assert.is(reply.status, 201);
  assert.ok(
    reply.cookies.some((value) => value.startsWith('lang=en')),
    JSON.stringify(reply.cookies),
  );
  assert.ok(
    reply.cookies.some((value) => value.startsWith('sid=')),
    JSON.stringify(reply.cookies),
  );
});

test('two parallel requests of one client that set different keys both keep them', async () => {
  const url = await serve(async (req, res, session) => {
    const key = new URL(req.url!, 'http://x').searchParams.get('k')!;
    await sleep(50);
    session.set(key, true);
    res.end('ok');
  });
  const cookie = cookieOf(await get(`${url}/?k=first`));
  await Promise.all(['a', 'b', 'c', 'd'].map((key) => get(`${url}/?k=${key}`, cookie)));
  assert.equal(await app.store.get(idOf(cookie)), { first: true, a: true, b: true, c: true, d: true });
});

test('a drop racing a slow request stays dropped; the slow response keeps its status', async () => {
  const url = await serve(async (req, res, session) => {
    if (req.url === '/logout') {
      session.drop();
      res.end('bye');
      return;
    }
    await sleep(300);
    session.set('late', true);
    res.statusCode = 202;
    res.end('late write');
  });
  const seed = await serve(kv);
  const cookie = cookieOf(await get(`${seed}/set?k=a&v=1`));
  const slow = get(`${url}/slow`, cookie);
  await sleep(50);
  const logout = await get(`${url}/logout`, cookie);
  assert.match(logout.cookies[0], /^sid=;/);
  const late = await slow;
  assert.is(late.status, 202, 'the status the handler gave');
  assert.match(late.cookies[0] ?? '', /^sid=;/, 'the cookie is expired, not re-issued');
  assert.is(await app.store.get(idOf(cookie)), null, 'a logout is never undone by a late request');
});

test('a store that cannot be reached gives 503, and nothing is reported as stored', async () => {
  const errors: Error[] = [];
  const other = await startSessionApp({ ...(await storeLocation(temp.dir, 'stopped')), sweepSignal: false });
  const url = await serve(kv, { onError: (error) => errors.push(error) }, other.store);
  const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
  await other.stop();
  const withCookie = await get(`${url}/get`, cookie);
  assert.is(withCookie.status, 503);
  const fresh = await get(`${url}/set?k=a&v=1`);
  assert.is(fresh.status, 503);
  assert.equal(fresh.cookies, []);
  assert.not.match(fresh.body, /"data"/);
  assert.is(errors.length, 2);
  assert.is(errors[0].name, 'AppStoppedError');
});

test('a failed app (supervisor gave up) gives 503', async () => {
  const failed = await startSessionApp({
    ...(await storeLocation(temp.dir, 'failed')),
    sweepSignal: false,
    restart: { intensity: 0, period: 5 },
  });
  failed.on('error', () => {});
  const errors: Error[] = [];
  const url = await serve(kv, { onError: (error) => errors.push(error) }, failed.store);
  await failed.kill('store');
  const reply = await get(`${url}/set?k=a&v=1`);
  assert.is(reply.status, 503);
  assert.is(errors[0].name, 'StoreUnavailableError');
  await failed.stop();
});

test('streaming: the cookie goes out with the headers, the commit before the final chunk', async () => {
  let stored: unknown = 'unset';
  const url = await serve(async (_req, res, session) => {
    session.set('step', 1);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('one,');
    await sleep(30);
    session.set('step', 2);
    res.write('two,');
    await sleep(30);
    res.end('three');
  });
  const reply = await get(url);
  assert.is(reply.body, 'one,two,three');
  const id = idOf(cookieOf(reply));
  stored = await app.store.get(id);
  assert.equal(stored, { step: 2 }, 'the change made while streaming was stored before the end');
});

test('a handler that throws or rejects: 500, the session not committed, onError told', async () => {
  const errors: Error[] = [];
  const url = await serve(
    async (req, _res, session) => {
      session.set('half', 'done');
      if (req.url === '/sync') throw new Error('sync boom');
      await sleep(10);
      throw new Error('async boom');
    },
    { onError: (error) => errors.push(error) },
  );
  const syncHandler = await serve(
    (_req, _res, session) => {
      session.set('x', 1);
      throw new Error('plain sync boom');
    },
    { onError: (error) => errors.push(error) },
  );
  for (const target of [`${url}/sync`, `${url}/async`, syncHandler]) {
    const reply = await get(target);
    assert.is(reply.status, 500, target);
    assert.equal(reply.cookies, [], 'nothing saved: no cookie');
  }
  assert.equal(
    errors.map((error) => error.message),
    ['sync boom', 'async boom', 'plain sync boom'],
  );
});

test('a non-JSON value is refused at set with a TypeError naming the key (500)', async () => {
  const errors: Error[] = [];
  const url = await serve(
    (_req, res, session) => {
      session.set('when', new Date() as never);
      res.end('unreachable');
    },
    { onError: (error) => errors.push(error) },
  );
  const reply = await get(url);
  assert.is(reply.status, 500);
  assert.instance(errors[0], TypeError);
  assert.match(errors[0].message, /"when"/);
});

test('a session over maxSessionBytes gives 500 and stores nothing', async () => {
  const small = await startSessionApp({ ...(await storeLocation(temp.dir, 'small')), sweepSignal: false, maxSessionBytes: 200 });
  const errors: Error[] = [];
  const url = await serve(
    (_req, res, session) => {
      session.set('blob', 'x'.repeat(500));
      res.end('stored?');
    },
    { onError: (error) => errors.push(error) },
    small.store,
  );
  const reply = await get(url);
  assert.is(reply.status, 500);
  assert.equal(reply.cookies, []);
  assert.is(errors[0].name, 'SessionTooLargeError');
  assert.is(await small.store.count(), 0);
  await small.stop();
});

test("cookie.maxAge with 'relative': the cookie is re-sent when a read renewed the stored timestamp (once per touchAfter), not inside it; not with 'fixed'", async () => {
  const sliding = await startSessionApp({ ...(await storeLocation(temp.dir, 'sliding')), sweepSignal: false, touchAfter: 0.2 });
  try {
    const url = await serve(kv, { cookie: { maxAge: 600 } }, sliding.store);
    const cookie = cookieOf(await get(`${url}/set?k=a&v=1`));
    assert.equal((await get(`${url}/get`, cookie)).cookies, [], 'inside touchAfter: the expiry did not move, no Set-Cookie');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const read = await get(`${url}/get`, cookie);
    assert.is(read.cookies.length, 1, 'the first read after touchAfter renews the timestamp and re-sends the cookie');
    assert.is(cookieOf(read), cookie);
    assert.match(read.cookies[0], /Max-Age=600/);
    assert.equal((await get(`${url}/get`, cookie)).cookies, [], 'and not again right after');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const dropped = await get(`${url}/drop`, cookie);
    assert.equal(dropped.cookies.length, 1, 'a drop sends the expired cookie alone');
    assert.match(dropped.cookies[0], /^sid=;/);
  } finally {
    await sliding.stop();
  }
  const fixed = await startSessionApp({
    ...(await storeLocation(temp.dir, 'fixed')),
    sweepSignal: false,
    timestamp: 'fixed',
    touchAfter: 0,
  });
  try {
    const fixedUrl = await serve(kv, { cookie: { maxAge: 600 } }, fixed.store);
    const fixedCookie = cookieOf(await get(`${fixedUrl}/set?k=a&v=1`));
    assert.equal((await get(`${fixedUrl}/get`, fixedCookie)).cookies, []);
  } finally {
    await fixed.stop();
  }
});

test('createHandler validates its options', () => {
  const bad: Array<[HandlerOptions, RegExp]> = [
    [{ key: 'bad key' } as HandlerOptions, /"key"/],
    [{ secret: '' }, /"secret"/],
    [{ secret: [] }, /"secret"/],
    [{ cookie: { sameSite: 'sideways' } } as unknown as HandlerOptions, /cookie\.sameSite/],
    [{ cookie: { sameSite: 'none' } }, /cookie\.sameSite.*secure/],
    [{ cookie: { maxAge: -1 } }, /cookie\.maxAge/],
    // Max-Age=0 would expire the cookie at once.
    [{ cookie: { maxAge: 0.5 } }, /cookie\.maxAge.*>= 1/],
    [{ cookie: { maxage: 5 } } as unknown as HandlerOptions, /cookie\.maxage/],
    [{ sceret: 'x' } as unknown as HandlerOptions, /"sceret"/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => createHandler(app.store, () => {}, options), message);
  }
  assert.throws(() => createHandler(app.store, 'nope' as never), /handler must be a function/);
  assert.throws(() => createHandler({} as never, () => {}), /store must be a SessionStore/);
});

test("createHandler's option errors say what was meant and what was given, as the config's do", () => {
  const error = (options: unknown) => {
    try {
      createHandler(app.store, () => {}, options as HandlerOptions);
    } catch (thrown) {
      return thrown as ConfigError;
    }
    throw new Error('not refused');
  };
  const typo = error({ cookie: { maxage: 5 } });
  assert.instance(typo, ConfigError);
  assert.is(typo.key, 'cookie.maxage');
  assert.match(typo.message, /unknown createHandler option "cookie\.maxage" \(did you mean "maxAge"\?\)/);
  assert.match(error({ sceret: 'x' }).message, /did you mean "secret"/);
  assert.not.match(error({ zzzzzzzz: 1 }).message, /did you mean/);
  // A value is shown by its kind, never by a function's source.
  assert.match(error({ cookie: { path: () => 'secret source' } }).message, /got a function$/);
  assert.match(error({ key: { a: 1 } }).message, /got an object$/);
});

test('the default onError logs one line per kind of error to stderr', async () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const url = await serve(() => {
      throw new Error('boom');
    });
    for (let i = 0; i < 3; i++) assert.is((await get(url)).status, 500);
  } finally {
    process.stderr.write = write;
  }
  const ours = lines.filter((line) => line.includes('supervised-sessions'));
  assert.is(ours.length, 1);
  assert.match(ours[0], /Error: boom/);
});

test.run();
