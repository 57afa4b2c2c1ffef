// The drop-in store under the real express-session middleware (Express 5),
// with express-session's own id generator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { request } from 'undici';
import { startSessionApp, type SessionApp } from '../src/index.ts';
import { SessionAppStore } from '../src/http/express-session-store.ts';
import { sleep, tempDir } from './helpers.ts';
import { storeLocation } from './engines.ts';

const temp = tempDir();
const closers: Array<() => Promise<void>> = [];
let app: SessionApp;

test.before(async () => {
  app = await startSessionApp({ ...(await storeLocation(temp.dir, 'es')), sweepSignal: false, maxAge: 1.5, touchAfter: 0.2 });
});
test.after(async () => {
  for (const close of closers) await close();
  await app.stop();
  temp.remove();
});

type Req = express.Request & {
  session: Record<string, unknown> & { regenerate(cb: (e?: Error) => void): void; destroy(cb: (e?: Error) => void): void };
};

const seen: Error[] = [];

async function serve(store: SessionAppStore, options: Record<string, unknown> = {}): Promise<string> {
  const web = express();
  web.use(session({ store, secret: 'drop-in secret', resave: false, saveUninitialized: false, ...options } as never));
  web.get('/set', (req, res) => {
    const r = req as unknown as Req;
    for (const [k, v] of Object.entries(req.query)) r.session[k] = v;
    res.json({ id: (req as unknown as { sessionID: string }).sessionID });
  });
  web.get('/get', (req, res) => {
    const { cookie: _cookie, ...data } = (req as unknown as Req).session;
    res.json({ id: (req as unknown as { sessionID: string }).sessionID, data });
  });
  web.get('/regenerate', (req, res, next) => {
    const r = req as unknown as Req;
    r.session.regenerate((error) => {
      if (error) return next(error);
      r.session.fresh = 'yes';
      res.json({ id: (req as unknown as { sessionID: string }).sessionID });
    });
  });
  web.get('/destroy', (req, res, next) => {
    (req as unknown as Req).session.destroy((error) => (error ? next(error) : res.json({ destroyed: true })));
  });
  web.use((error: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    seen.push(error);
    // express-session saves after the response started: too late for a status then.
    if (!res.headersSent) res.status(error.status ?? 500).json({ error: error.message });
  });
  const server = createServer(web);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(url: string, cookie?: string) {
  const response = await request(url, { headers: cookie ? { cookie } : {}, headersTimeout: 5000, bodyTimeout: 5000 });
  const body = JSON.parse(await response.body.text()) as Record<string, any>;
  const raw = response.headers['set-cookie'];
  const line = (raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]).find((l) => l.startsWith('connect.sid='));
  return { status: response.statusCode, body, cookie: line?.split(';')[0] };
}

/** The callback API, promised: errors arrive as rejections. */
const call = <T>(fn: (cb: (error: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value as T))));

test('create, read, modify with express-session ids; saveUninitialized: false stores nothing untouched', async () => {
  const store = new SessionAppStore(app.store);
  await call((cb) => store.clear(cb));
  const url = await serve(store);
  const empty = await get(`${url}/get`);
  assert.is(empty.cookie, undefined, 'no cookie for an untouched session');
  assert.is(await call<number>((cb) => store.length(cb)), 0);
  const created = await get(`${url}/set?user=ada`);
  assert.ok(created.cookie);
  assert.match(created.body.id, /^[\w-]{32}$/, "express-session's own id");
  assert.equal((await get(`${url}/get`, created.cookie)).body.data, { user: 'ada' });
  await get(`${url}/set?role=admin`, created.cookie);
  assert.equal((await get(`${url}/get`, created.cookie)).body.data, { user: 'ada', role: 'admin' });
  assert.is(await call<number>((cb) => store.length(cb)), 1);
  const all = await call<Array<Record<string, unknown>>>((cb) => store.all(cb));
  assert.is(all.length, 1);
  assert.is(all[0].role, 'admin');
  assert.ok(all[0].cookie, "the stored object is express-session's, cookie included");
});

test('regenerate gives a new, empty session and ends the old one; destroy ends it', async () => {
  const store = new SessionAppStore(app.store);
  const url = await serve(store);
  const first = await get(`${url}/set?user=ada`);
  const oldId = first.body.id as string;
  const regenerated = await get(`${url}/regenerate`, first.cookie);
  assert.is.not(regenerated.body.id, oldId);
  assert.is(await call((cb) => store.get(oldId, cb)), null, 'the old id is gone');
  assert.equal((await get(`${url}/get`, regenerated.cookie)).body.data, { fresh: 'yes' });
  await get(`${url}/destroy`, regenerated.cookie);
  assert.is(await call((cb) => store.get(regenerated.body.id as string, cb)), null);
  assert.equal((await get(`${url}/get`, regenerated.cookie)).body.data, {}, 'a fresh session after destroy');
});

test("each session expires with its cookie (express-session's cookie.expires), not the app's maxAge: longer, shorter, or the app's for a browser-session cookie", async () => {
  // One store per middleware: express-session installs its session factory on the store it is given.
  const store = new SessionAppStore(app.store);
  const long = await serve(store, { cookie: { maxAge: 60_000 } });
  const short = await serve(new SessionAppStore(app.store), { cookie: { maxAge: 600 } });
  const browser = await serve(new SessionAppStore(app.store));
  const remembered = await get(`${long}/set?user=ada`);
  const brief = await get(`${short}/set?user=bob`);
  const plain = await get(`${browser}/set?user=cy`);
  assert.match(remembered.cookie!, /^connect\.sid=/);
  await sleep(900);
  // Past the short cookie's 0.6 s, within the app's 1.5 s: dead in the store.
  assert.is(await call((cb) => store.get(brief.body.id as string, cb)), null, 'the short session is dead in the store');
  const renewedBrief = await get(`${short}/get`, brief.cookie);
  assert.equal(renewedBrief.body.data, {}, 'a session expired in the store gives a new session');
  assert.is.not(renewedBrief.body.id, brief.body.id);
  await sleep(1000);
  // Past the app's maxAge (1.5 s): the browser-session cookie's session is dead, the remembered one lives.
  assert.equal((await get(`${browser}/get`, plain.cookie)).body.data, {}, 'the app maxAge for a browser-session cookie');
  assert.equal((await get(`${long}/get`, remembered.cookie)).body.data, { user: 'ada' }, 'the 60 s cookie outlives the app maxAge');
  const all = await call<Array<Record<string, unknown>>>((cb) => store.all(cb));
  assert.ok(all.some((data) => data.user === 'ada'));
  assert.not.ok(
    all.some((data) => data.user === 'bob' || data.user === 'cy'),
    'all() lists only live sessions',
  );
});

test("touch extends the expiry to the cookie's (rolling: false, resave: false); left alone, the session dies when its cookie does", async () => {
  const store = new SessionAppStore(app.store);
  const url = await serve(store, { cookie: { maxAge: 1000 } });
  const created = await get(`${url}/set?user=ada`);
  // Kept alive past the cookie's 1 s by reads, each an express-session touch (no cookie re-sent: rolling is off).
  for (let i = 0; i < 4; i++) {
    await sleep(400);
    const read = await get(`${url}/get`, created.cookie);
    assert.equal(read.body.data, { user: 'ada' }, `read ${i}`);
    assert.is(read.body.id, created.body.id);
  }
  await sleep(1300);
  const after = await get(`${url}/get`, created.cookie);
  assert.equal(after.body.data, {}, 'dead once its cookie expired without a touch');
  assert.is(await call((cb) => store.get(created.body.id as string, cb)), null);
});

test('touch keeps the stored cookie with the expiry it moved (beyond touchAfter); within touchAfter it writes nothing', async () => {
  const store = new SessionAppStore(app.store);
  const cookie = (expires: Date) => ({ originalMaxAge: 60_000, expires, httpOnly: true, path: '/' });
  const first = new Date(Date.now() + 60_000);
  await call((cb) => store.set('moved-key', { cookie: cookie(first), n: 1 } as never, cb));
  // 20 ms later than stored: within touchAfter (0.2 s, which leaves room for the calls' own latency), nothing written.
  await call((cb) => store.touch('moved-key', { cookie: cookie(new Date(first.getTime() + 20)), n: 1 } as never, cb));
  const kept = await call<Record<string, any>>((cb) => store.get('moved-key', cb));
  assert.is(kept.cookie.expires, first.toISOString());
  const later = new Date(first.getTime() + 5000);
  await call((cb) => store.touch('moved-key', { cookie: cookie(later), n: 1 } as never, cb));
  const moved = await call<Record<string, any>>((cb) => store.get('moved-key', cb));
  assert.equal(
    moved,
    { cookie: { ...cookie(later), expires: later.toISOString() }, n: 1 },
    'the cookie moved with the expiry, the data kept',
  );
});

test("cookie.maxAge changed by a request (a remember-me login) is the session's new expiry", async () => {
  const store = new SessionAppStore(app.store);
  const web = express();
  web.use(session({ store, secret: 'drop-in secret', resave: false, saveUninitialized: false, cookie: { maxAge: 500 } } as never));
  web.get('/login', (req, res) => {
    const r = req as unknown as Req & { session: { cookie: { maxAge: number } } };
    r.session.user = 'ada';
    if (req.query.remember) r.session.cookie.maxAge = 60_000;
    res.json({ id: (req as unknown as { sessionID: string }).sessionID });
  });
  const server = createServer(web);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const remembered = await get(`${url}/login?remember=1`);
  const forgotten = await get(`${url}/login`);
  await sleep(1800);
  const stored = await call<Record<string, any>>((cb) => store.get(remembered.body.id as string, cb));
  assert.is(stored.user, 'ada', "the remembered session lives past the first cookie's 0.5 s");
  // express-session reads the time left when the route sets maxAge: 60 s, give or take the request's milliseconds.
  assert.ok(
    stored.cookie.originalMaxAge > 59_000 && stored.cookie.originalMaxAge <= 60_000,
    `with the cookie the login gave it: ${stored.cookie.originalMaxAge}`,
  );
  assert.is(await call((cb) => store.get(forgotten.body.id as string, cb)), null, 'the 0.5 s cookie: dead');
});

test('touch renews the timestamp only when it is older than touchAfter; a dead session is never revived by set', async () => {
  const store = new SessionAppStore(app.store);
  await call((cb) => store.set('touched-key', { n: 1 } as never, cb));
  await call((cb) => store.set('throttled-key', { n: 2 } as never, cb));
  // Within touchAfter (0.2 s): a touch writes nothing.
  await call((cb) => store.touch('throttled-key', {} as never, cb));
  await sleep(1000);
  await call((cb) => store.touch('touched-key', {} as never, cb));
  await sleep(700);
  assert.equal(await call((cb) => store.get('touched-key', cb)), { n: 1 }, 'renewed by the touch after 1 s');
  assert.is(await call((cb) => store.get('throttled-key', cb)), null, 'the early touch did not renew it: dead after maxAge');
  // A late save (resave: true) of the dead session stores nothing.
  await call((cb) => store.set('throttled-key', { n: 3 } as never, cb));
  assert.is(await call((cb) => store.get('throttled-key', cb)), null, 'never revived');
});

test('set with data that is not JSON: the error reaches the callback, never thrown', async () => {
  const store = new SessionAppStore(app.store);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const error = await call((cb) => store.set('cyclic', cyclic as never, cb)).then(
    () => null,
    (e: unknown) => e,
  );
  assert.instance(error, Error);
});

test('clear empties the store; a session too large is an error for express-session, nothing stored', async () => {
  const store = new SessionAppStore(app.store);
  await call((cb) => store.set('a-key-of-express-session', { cookie: {}, n: 1 } as never, cb));
  assert.ok((await call<number>((cb) => store.length(cb))) >= 1);
  await call((cb) => store.clear(cb));
  assert.is(await call<number>((cb) => store.length(cb)), 0);
  const error = await call((cb) => store.set('too-big', { big: 'x'.repeat(70_000) } as never, cb)).then(
    () => null,
    (e: unknown) => e,
  );
  assert.match(String(error), /maxSessionBytes/);
  assert.is(await call((cb) => store.get('too-big', cb)), null);
});

test('a store that is down: the errors reach next(err), never thrown', async () => {
  const other = await startSessionApp({ ...(await storeLocation(temp.dir, 'stopped')), sweepSignal: false });
  closers.push(() => other.stop());
  const store = new SessionAppStore(other.store);
  const url = await serve(store);
  const created = await get(`${url}/set?user=ada`);
  await other.stop();
  seen.length = 0;
  // Loading: before the response, so the app's error middleware answers.
  const load = await get(`${url}/get`, created.cookie);
  assert.is(load.status, 500);
  assert.match(load.body.error, /stopped/);
  // Saving: express-session saves inside res.end, after the headers: the error still reaches next.
  seen.length = 0;
  const save = await get(`${url}/set?user=grace`);
  await sleep(50);
  assert.is(save.status, 200, 'what express-session does, and the reason to use the native front door');
  assert.match(String(seen[0]), /stopped/);
});

test('SessionAppStore refuses anything but the app store', () => {
  assert.throws(() => new SessionAppStore({} as never), /app\.store/);
});

test.run();
