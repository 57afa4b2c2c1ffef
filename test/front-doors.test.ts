// One HTTP contract suite, eight front doors: createHandler, the Express
// middleware on Express 5 and on Express 4, the Fastify plugin, the Web
// fetch-handler wrapper, the Koa middleware on Koa 3 and Koa 2, the Hono
// middleware — each a real server on 127.0.0.1:0, driven by undici.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createServer as createHttpsServer } from 'node:https';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import express5 from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import {
  startSessionApp,
  createHandler,
  SessionCommittedError,
  type SessionApp,
  type HandlerOptions,
  type SessionStore,
} from '../src/index.ts';
import { sessions } from '../src/http/express.ts';
import { fastifySessions } from '../src/http/fastify.ts';
import { withSessions } from '../src/http/web.ts';
import { sessions as koaSessions } from '../src/http/koa.ts';
import { sessions as honoSessions } from '../src/http/hono.ts';
import { downStore, sleep, tempDir } from './helpers.ts';
import { storeLocation } from './engines.ts';
import {
  closeDoors,
  closers,
  cookieOf,
  DOORS,
  get,
  idOf,
  listenNode,
  nodeToFetch,
  serve as serveDoor,
  type Door,
  type Reply,
  type Route,
  listenHono,
} from './doors.ts';
import type { SessionEnv } from '../src/http/hono.ts';

const temp = tempDir();
let app: SessionApp;

test.before(async () => {
  app = await startSessionApp({ ...(await storeLocation(temp.dir, 'doors')), sweepSignal: false });
});
test.after(async () => {
  await closeDoors();
  await app.stop();
  temp.remove();
});

const serve = (door: Door, route: Route, options: HandlerOptions = {}, store: SessionStore = app.store) =>
  serveDoor(door, route, options, store);

/** A small app: ?set=k&v=..., ?drop, ?renew, ?wait=ms, ?status=n; answers the session as it is. */
/** `?hold`: the route says its session is loaded (onLoaded), then waits until the test releases it (held). */
let onLoaded: () => void = () => {};
let held: Promise<void> = Promise.resolve();

const kv: Route = async (session, q) => {
  if (q.has('hold')) {
    onLoaded();
    await held;
  }
  if (q.has('wait')) await sleep(Number(q.get('wait')));
  if (q.has('throw')) {
    session.set('half', 'done');
    throw new Error('route bug');
  }
  if (q.has('set')) session.set(q.get('set')!, q.has('big') ? 'x'.repeat(Number(q.get('big'))) : q.get('v'));
  if (q.has('renew')) session.renew();
  if (q.has('drop')) session.drop();
  return { status: q.has('status') ? Number(q.get('status')) : 200, body: { isNew: session.isNew, data: session.toJSON() } };
};

for (const door of DOORS) {
  test(`${door}: a new session is stored before the response, and read back by the next request`, async () => {
    const url = await serve(door, kv);
    const first = await get(`${url}/?set=name&v=ada`);
    assert.is(first.status, 200);
    const cookie = cookieOf(first)!;
    assert.ok(cookie, `a Set-Cookie: ${first.cookies}`);
    assert.equal(await app.store.get(idOf(cookie)), { name: 'ada' }, 'stored before the response completed');
    const second = await get(`${url}/`, cookie);
    assert.equal(second.body, { isNew: false, data: { name: 'ada' } });
    assert.equal(second.cookies, [], 'an unchanged session sends no cookie');
    assert.equal((await get(`${url}/`)).cookies, [], 'a new, empty session gets no cookie');
  });

  test(`${door}: two parallel requests of one client that set different keys both keep them`, async () => {
    const url = await serve(door, kv);
    const id = (await app.store.put(null, {}))!;
    await Promise.all([get(`${url}/?wait=30&set=a&v=1`, `sid=${id}`), get(`${url}/?set=b&v=2`, `sid=${id}`)]);
    assert.equal(await app.store.get(id), { a: '1', b: '2' });
  });

  test(`${door}: a logout racing a slow request stays a logout; the slow response keeps its status`, async () => {
    const url = await serve(door, kv);
    const id = (await app.store.put(null, { user: 'ada' }))!;
    // The slow request has loaded the session before the logout, and commits after it: no timing assumed.
    let release: () => void = () => {};
    held = new Promise((resolve) => {
      release = resolve;
    });
    const loaded = new Promise<void>((resolve) => {
      onLoaded = resolve;
    });
    const slow = get(`${url}/?hold&set=late&v=1&status=202`, `sid=${id}`);
    await loaded;
    const logout = await get(`${url}/?drop`, `sid=${id}`);
    assert.ok(
      logout.cookies.some((line) => /^sid=;/.test(line)),
      'the logout expires the cookie',
    );
    release();
    const late = await slow;
    assert.is(late.status, 202);
    assert.ok(
      late.cookies.some((line) => /^sid=;/.test(line)),
      'the late response expires it too',
    );
    assert.is(await app.store.get(id), null, 'never undone');
  });

  test(`${door}: renew() gives a new id with the data kept; the old id is dead`, async () => {
    const url = await serve(door, kv);
    const id = (await app.store.put(null, { role: 'guest' }))!;
    const reply = await get(`${url}/?renew&set=role&v=user`, `sid=${id}`);
    const renewed = idOf(cookieOf(reply)!);
    assert.is.not(renewed, id);
    assert.is(await app.store.get(id), null);
    assert.equal(await app.store.get(renewed), { role: 'user' });
  });

  test(`${door}: forged, unknown and dead cookies are never adopted`, async () => {
    const url = await serve(door, kv, { secret: 'front-door-secret' });
    const forged = `sid=${'A'.repeat(43)}.${'B'.repeat(43)}`;
    const reply = await get(`${url}/?set=x&v=1`, forged);
    assert.is(reply.body.isNew, true);
    const issued = cookieOf(reply)!;
    assert.is.not(issued, forged);
    const unknownId = `sid=${'C'.repeat(43)}`;
    assert.is((await get(`${url}/`, unknownId)).body.isNew, true);
  });

  test(`${door}: a dead (deleted) session's cookie gets a fresh session; nothing is created under the old id`, async () => {
    const url = await serve(door, kv);
    const id = (await app.store.put(null, { n: 1 }))!;
    await app.store.delete(id);
    const reply = await get(`${url}/?set=x&v=1`, `sid=${id}`);
    assert.is(reply.body.isNew, true);
    assert.is.not(idOf(cookieOf(reply)!), id, "a new id, never the client's");
    assert.is(await app.store.get(id), null);
  });

  test(`${door}: a route that throws gets a 500 and stores nothing`, async () => {
    const url = await serve(door, kv);
    const id = (await app.store.put(null, { n: 1 }))!;
    const before = await app.store.count();
    const existing = await get(`${url}/?throw`, `sid=${id}`);
    assert.is(existing.status, 500);
    assert.equal(await app.store.get(id), { n: 1 }, 'the change before the throw was not stored');
    const fresh = await get(`${url}/?throw`);
    assert.is(fresh.status, 500);
    assert.equal(
      fresh.cookies.filter((line) => line.startsWith('sid=')),
      [],
      'no session cookie',
    );
    assert.is(await app.store.count(), before, 'no session created');
  });

  test(`${door}: the store down: 503 when loading and when committing; nothing reported as stored`, async () => {
    const loading = await serve(door, kv, {}, downStore(true));
    assert.is((await get(`${loading}/`, `sid=${'A'.repeat(43)}`)).status, 503);
    const committing = await serve(door, kv, {}, downStore(false));
    const reply = await get(`${committing}/?set=a&v=1`, `sid=${'A'.repeat(43)}`);
    assert.is(reply.status, 503);
    assert.equal(
      reply.cookies.filter((line) => line.startsWith('sid=')),
      [],
      'no session cookie on the error',
    );
  });

  test(`${door}: a session over maxSessionBytes gives 500 and stores nothing`, async () => {
    const url = await serve(door, kv);
    const before = await app.store.count();
    const reply = await get(`${url}/?set=big&big=70000`);
    assert.is(reply.status, 500);
    assert.is(await app.store.count(), before);
  });

  test(`${door}: cookie.secure 'auto' — Secure over HTTPS only; X-Forwarded-Proto believed only with trustProxy`, async () => {
    const plain = await serve(door, kv, { cookie: { secure: 'auto' } });
    const trusting = await serve(door, kv, { cookie: { secure: 'auto' }, trustProxy: true });
    const isSecure = (reply: Reply) => /; Secure/i.test(reply.cookies.find((line) => line.startsWith('sid='))!);
    assert.not.ok(isSecure(await get(`${plain}/?set=a&v=1`)), 'plain HTTP: not Secure');
    assert.not.ok(
      isSecure(await get(`${plain}/?set=a&v=1`, undefined, { 'x-forwarded-proto': 'https' })),
      'an untrusted header is ignored',
    );
    assert.ok(isSecure(await get(`${trusting}/?set=a&v=1`, undefined, { 'x-forwarded-proto': 'https' })), 'behind a trusted proxy: Secure');
    assert.not.ok(isSecure(await get(`${trusting}/?set=a&v=1`, undefined, { 'x-forwarded-proto': 'http' })));
  });

  test(`${door}: cookie.partitioned and cookie.priority reach the browser; with secure 'auto' only an HTTPS cookie is Partitioned`, async () => {
    const secure = await serve(door, kv, { cookie: { secure: true, partitioned: true, priority: 'high' } });
    const line = (await get(`${secure}/?set=a&v=1`)).cookies.find((l) => l.startsWith('sid='))!;
    assert.match(line, /; Secure(;|$)/, line);
    assert.match(line, /; Partitioned(;|$)/, line);
    assert.match(line, /; Priority=High(;|$)/, line);
    const dropped = (await get(`${secure}/?drop`, line.split(';')[0])).cookies.find((l) => l.startsWith('sid='))!;
    assert.match(dropped, /Max-Age=0.*Partitioned/, `the expiring cookie names the same partition: ${dropped}`);
    const auto = await serve(door, kv, { cookie: { secure: 'auto', partitioned: true }, trustProxy: true });
    const plain = (await get(`${auto}/?set=a&v=1`)).cookies.find((l) => l.startsWith('sid='))!;
    assert.not.match(plain, /Partitioned|Secure/, `plain HTTP: neither: ${plain}`);
    const proxied = (await get(`${auto}/?set=a&v=1`, undefined, { 'x-forwarded-proto': 'https' })).cookies.find((l) =>
      l.startsWith('sid='),
    )!;
    assert.match(proxied, /; Secure; Partitioned(;|$)/, proxied);
    const low = await serve(door, kv, { cookie: { priority: 'low' } });
    assert.match((await get(`${low}/?set=a&v=1`)).cookies.find((l) => l.startsWith('sid='))!, /; Priority=Low(;|$)/);
  });
}

test('cookie.partitioned without secure, a priority browsers do not know, a touch that is no function: a ConfigError naming the option', async () => {
  const refused = (options: unknown, pattern: RegExp) => {
    assert.throws(() => createHandler(app.store, () => {}, options as HandlerOptions), pattern);
    assert.throws(() => sessions(app.store, options as HandlerOptions), pattern);
    assert.throws(() => koaSessions(app.store, options as never), pattern);
    assert.throws(() => honoSessions(app.store, options as never), pattern);
    assert.throws(() => withSessions(app.store, () => new Response(), options as never), pattern);
  };
  refused({ cookie: { partitioned: true } }, /cookie\.partitioned.*secure is true or 'auto'/);
  refused({ cookie: { partitioned: 'yes', secure: true } }, /cookie\.partitioned.*true or false/);
  refused({ cookie: { priority: 'urgent' } }, /cookie\.priority.*'low', 'medium' or 'high'/);
  refused({ touch: true }, /touch.*a function/);
  assert.throws(() => koaSessions(app.store, { cokie: {} } as never), /sessions option "?cokie/);
});

test('an error handler that sets no status still answers a failed commit with its 503 (Express, Fastify)', async () => {
  const web = express5();
  web.use(sessions(downStore(false), { onError: () => {} }));
  web.use((req, res) => {
    req.session.set('a', 1);
    res.json({ ok: true });
  });
  web.use((error: Error, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
    res.json({ error: error.message });
  });
  const expressUrl = await listenNode(createServer(web));
  assert.is((await get(expressUrl, `sid=${'A'.repeat(43)}`)).status, 503);
  const fastify = Fastify();
  fastify.setErrorHandler((error, _request, reply) => {
    void reply.send({ error: (error as Error).message });
  });
  await fastify.register(fastifySessions, { store: downStore(false), onError: () => {} });
  fastify.get('/', async (request) => {
    request.session.set('a', 1);
    return { ok: true };
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => fastify.close());
  const fastifyUrl = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
  assert.is((await get(fastifyUrl, `sid=${'A'.repeat(43)}`)).status, 503);
  const loadDown = Fastify();
  loadDown.setErrorHandler((error, _request, reply) => {
    void reply.send({ error: (error as Error).message });
  });
  await loadDown.register(fastifySessions, { store: downStore(true), onError: () => {} });
  loadDown.get('/', async () => ({ ok: true }));
  await loadDown.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => loadDown.close());
  assert.is((await get(`http://127.0.0.1:${(loadDown.server.address() as AddressInfo).port}`, `sid=${'A'.repeat(43)}`)).status, 503);
});

test("cookie.secure 'auto' over a real TLS socket: Secure (createHandler, Express)", async () => {
  // A throwaway self-signed certificate for 127.0.0.1.
  const dir = tempDir('tls-');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir.dir, 'key.pem'),
      '-out',
      join(dir.dir, 'cert.pem'),
    ],
    { encoding: 'utf8' },
  );
  assert.is(made.status, 0, `openssl: ${made.stderr ?? made.error}`);
  const tls = { key: readFileSync(join(dir.dir, 'key.pem')), cert: readFileSync(join(dir.dir, 'cert.pem')) };
  dir.remove();
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  const web = express5();
  web.use(sessions(app.store, { cookie: { secure: 'auto' }, onError: () => {} }));
  web.use((req, res) => {
    req.session.set('a', 1);
    res.json({});
  });
  const servers = [
    createHttpsServer(
      tls,
      createHandler(
        app.store,
        (_req, res, session) => {
          session.set('a', 1);
          res.end('{}');
        },
        { cookie: { secure: 'auto' } },
      ),
    ),
    createHttpsServer(tls, web),
  ];
  try {
    for (const server of servers) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const response = await request(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`, { dispatcher: insecure });
      await response.body.text();
      const line = [response.headers['set-cookie']].flat().find((l) => String(l).startsWith('sid='));
      assert.match(String(line), /; Secure/);
    }
  } finally {
    for (const server of servers)
      await new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      });
    await insecure.close();
  }
});

test('the front doors refuse a missing store, like createHandler', async () => {
  assert.throws(() => sessions(undefined as never), /store must be a SessionStore/);
  const fastify = Fastify();
  const error = await fastify
    .register(fastifySessions, {} as never)
    .ready()
    .then(
      () => null,
      (e: unknown) => e,
    );
  assert.match(String(error), /store must be a SessionStore/);
  await fastify.close();
  assert.throws(() => withSessions(undefined as never, () => new Response()), /store must be a SessionStore/);
  assert.throws(() => withSessions(app.store, 'nope' as never), /handler must be a function/);
});

// What only a fetch handler can do: return a Response whose headers are
// immutable, return something that is no Response, keep going after it
// returned.
test('web: a redirect (immutable headers) gets its cookie; no Response is a 500; a change after the Response is returned throws', async () => {
  const told: Array<{ message: string; request: boolean }> = [];
  let late: unknown = null;
  const url = await listenNode(
    createServer(
      nodeToFetch(
        withSessions(
          app.store,
          async (request, session) => {
            const q = new URL(request.url).searchParams;
            session.set('n', Number(session.get('n') ?? 0) + 1);
            if (q.has('redirect')) return Response.redirect(new URL('/next', request.url), 303);
            if (q.has('nothing')) return 'not a response' as unknown as Response;
            if (q.has('later')) {
              // Once the Response has been handed back (the client has it).
              setTimeout(() => {
                try {
                  session.set('late', 1);
                } catch (error) {
                  late = error;
                }
              }, 50);
            }
            return Response.json(session.toJSON());
          },
          { onError: (error, request) => told.push({ message: error.message, request: request instanceof Request }) },
        ),
      ),
    ),
  );
  const redirected = await get(`${url}/?redirect`);
  assert.is(redirected.status, 303);
  const cookie = cookieOf(redirected);
  assert.ok(cookie, 'the immutable redirect carries the new session cookie');
  assert.equal(await app.store.get(idOf(cookie!)), { n: 1 });

  const nothing = await get(`${url}/?nothing`, cookie);
  assert.is(nothing.status, 500);
  assert.equal(await app.store.get(idOf(cookie!)), { n: 1 }, 'the failed request stored nothing');
  assert.equal(told, [
    { message: 'withSessions: the handler must return a Response with a status from 200 to 599 and a body not yet read', request: true },
  ]);

  const later = await get(`${url}/?later`, cookie);
  assert.is(later.status, 200);
  await sleep(100);
  assert.instance(late, SessionCommittedError);
  assert.equal(await app.store.get(idOf(cookie!)), { n: 2 }, 'the change after the Response was returned was not stored');
});

// A handler may hand the same Response to every request: the cookie of one
// must never reach another. A network error is no answer.
test('web: a Response shared by every request carries each its own cookie only; Response.error() is a 500 that stores nothing', async () => {
  const shared = new Response(null, { status: 204 });
  // A Response with a body, handed to every request: its body can be sent once.
  const withBody = new Response('once');
  const url = await listenNode(
    createServer(
      nodeToFetch(
        withSessions(
          app.store,
          (request, session) => {
            session.set('n', 1);
            const q = new URL(request.url).searchParams;
            if (q.has('used')) return withBody;
            return q.has('error') ? Response.error() : shared;
          },
          { onError: () => {} },
        ),
      ),
    ),
  );
  const first = await get(url);
  const second = await get(url);
  assert.is(first.status, 204);
  assert.is(second.status, 204);
  assert.is(first.cookies.length, 1);
  assert.is(second.cookies.length, 1, `one cookie, its own: ${second.cookies.join(' | ')}`);
  assert.is.not(cookieOf(second), cookieOf(first));
  assert.equal(shared.headers.getSetCookie(), [], "the handler's Response is never changed");

  const before = await app.store.count();
  const failed = await get(`${url}/?error`);
  assert.is(failed.status, 500);
  assert.equal(failed.cookies, []);
  assert.is(await app.store.count(), before, 'nothing stored for a network error');
  const once = await get(`${url}/?used`);
  assert.is(once.status, 200);
  assert.is(once.body, 'once');
  const countAfterFirst = await app.store.count();
  const again = await get(`${url}/?used`);
  assert.is(again.status, 500, 'a body already sent cannot be an answer');
  assert.equal(again.cookies, []);
  assert.is(await app.store.count(), countAfterFirst, 'and nothing was stored for it');
  assert.throws(
    () => withSessions(app.store, () => new Response(), { cookie: { maxage: 1 } } as never),
    /unknown withSessions option "cookie\.maxage"/,
  );
});

// What only Koa does: ctx.throw(4xx) as control flow, ctx.onerror clearing
// every header, an upstream error middleware, a response written by hand.
test('koa: ctx.throw(401) commits as a 401; a thrown 500 stores no data but keeps a drop, its cookie carried through ctx.onerror', async () => {
  const koa = new Koa();
  koa.silent = true;
  const errors: string[] = [];
  koa.use(koaSessions(app.store, { onError: (error) => errors.push(error.message) }));
  koa.use(async (ctx) => {
    const q = new URL(ctx.url, 'http://x').searchParams;
    if (q.has('set')) ctx.session.set('seen', q.get('set'));
    if (q.has('drop')) ctx.session.drop();
    if (q.has('deny')) ctx.throw(401, 'log in first');
    if (q.has('bug')) throw new Error('route bug');
    if (q.has('raw')) {
      ctx.respond = false;
      ctx.res.end('by hand');
      return;
    }
    ctx.body = { data: ctx.session.toJSON() };
  });
  const url = await listenNode(createServer(koa.callback()));
  const id = (await app.store.put(null, { user: 'ada' }))!;
  const denied = await get(`${url}/?set=denied&deny`, `sid=${id}`);
  assert.is(denied.status, 401);
  assert.is(denied.body, 'log in first', 'Koa answered its own HttpError');
  assert.equal(await app.store.get(id), { user: 'ada', seen: 'denied' }, 'a 4xx commits');
  const bug = await get(`${url}/?set=bug&bug`, `sid=${id}`);
  assert.is(bug.status, 500);
  assert.equal(await app.store.get(id), { user: 'ada', seen: 'denied' }, 'a 500 stores no data change');
  assert.ok(errors.includes('route bug'), 'onError is told of the 5xx');
  const logout = await get(`${url}/?drop&bug`, `sid=${id}`);
  assert.is(logout.status, 500);
  assert.ok(
    logout.cookies.some((line) => /^sid=;.*Max-Age=0/.test(line)),
    `the logout's cookie survives ctx.onerror: ${logout.cookies}`,
  );
  assert.is(await app.store.get(id), null, 'the drop applied');
  const other = (await app.store.put(null, { user: 'bob' }))!;
  const raw = await get(`${url}/?set=raw&raw`, `sid=${other}`);
  assert.is(raw.body, 'by hand');
  assert.equal(await app.store.get(other), { user: 'bob' }, 'a response written by hand stores nothing');
  assert.ok(
    errors.some((message) => /written outside Koa/.test(message)),
    errors.join('; '),
  );
});

test('koa: a failed commit reaches an upstream error middleware as a 503 without the cookie; mounted twice, one session', async () => {
  const koa = new Koa();
  koa.silent = true;
  const seen: number[] = [];
  koa.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      seen.push((error as { status: number }).status);
      ctx.status = (error as { status: number }).status;
      ctx.body = { error: 'sorry' };
    }
  });
  koa.use(koaSessions(downStore(false), { onError: () => {} }));
  koa.use(koaSessions(app.store, { onError: () => {} }));
  koa.use(async (ctx) => {
    ctx.set('x-handler', 'yes');
    ctx.session.set('a', 1);
    ctx.body = { ok: true };
  });
  const url = await listenNode(createServer(koa.callback()));
  const reply = await get(`${url}/`);
  assert.is(reply.status, 503);
  assert.equal(reply.body, { error: 'sorry' });
  assert.equal(reply.cookies, [], 'no session cookie on the error reply');
  assert.equal(seen, [503], "the error's status is 503: the first sessions() owns the request, the second stands aside");
});

// What only Hono does: app.onError answers a thrown Error before the
// middleware sees the result; HTTPException; sub-apps.
test("hono: an HTTPException 401 commits; a thrown Error stores no data but keeps a drop; a store failure is Hono's 503 by default", async () => {
  const hono = new Hono<SessionEnv>();
  const errors: string[] = [];
  hono.use(honoSessions(app.store, { onError: (error) => errors.push(error.message) }));
  hono.get('/', (c) => {
    const q = new URL(c.req.url).searchParams;
    if (q.has('set')) c.var.session.set('seen', q.get('set'));
    if (q.has('drop')) c.get('session').drop();
    if (q.has('deny')) throw new HTTPException(401, { message: 'log in first' });
    if (q.has('bug')) throw new Error('route bug');
    if (q.has('redirect')) return c.redirect('/elsewhere');
    c.header('set-cookie', 'theme=dark; Path=/');
    return c.json({ data: c.var.session.toJSON() });
  });
  hono.onError((error, c) => (error instanceof HTTPException ? error.getResponse() : c.text('oops', 500)));
  const url = await listenHono(hono.fetch);
  const id = (await app.store.put(null, { user: 'ada' }))!;
  const denied = await get(`${url}/?set=denied&deny`, `sid=${id}`);
  assert.is(denied.status, 401);
  assert.equal(await app.store.get(id), { user: 'ada', seen: 'denied' }, 'a 4xx commits');
  const bug = await get(`${url}/?set=bug&bug`, `sid=${id}`);
  assert.is(bug.status, 500);
  assert.equal(await app.store.get(id), { user: 'ada', seen: 'denied' }, 'a 500 stores no data change');
  assert.ok(errors.includes('route bug'), 'onError is told of the 5xx');
  const fresh = await get(`${url}/?set=a`);
  assert.equal(fresh.cookies.length, 2, `the handler's own cookie and ours: ${fresh.cookies}`);
  assert.ok(fresh.cookies.includes('theme=dark; Path=/'));
  const moved = await get(`${url}/?set=b&redirect`, cookieOf(fresh));
  assert.is(moved.status, 302);
  assert.equal(await app.store.get(idOf(cookieOf(fresh)!)), { seen: 'b' }, 'a redirect commits');
  const logout = await get(`${url}/?drop&bug`, `sid=${id}`);
  assert.is(logout.status, 500);
  assert.ok(
    logout.cookies.some((line) => /^sid=;.*Max-Age=0/.test(line)),
    `the logout's cookie: ${logout.cookies}`,
  );
  assert.is(await app.store.get(id), null, 'the drop applied');

  // No app.onError: Hono's own answer to the HTTPException, 503, without the store's message or the handler's cookie.
  const down = new Hono<SessionEnv>();
  down.use(honoSessions(downStore(false), { onError: () => {} }));
  down.get('/', (c) => {
    c.var.session.set('a', 1);
    c.header('set-cookie', 'theme=dark; Path=/');
    return c.text('stored?');
  });
  const downUrl = await listenHono(down.fetch);
  const failed = await get(`${downUrl}/`);
  assert.is(failed.status, 503);
  assert.is(failed.body, 'Service Unavailable');
  assert.equal(failed.cookies, [], 'no cookie of the handler or ours on the error reply');

  // Mounted on the app and on a sub-app: one session.
  const outer = new Hono<SessionEnv>();
  const inner = new Hono<SessionEnv>();
  let sessions = 0;
  outer.use(honoSessions(app.store, { onError: () => {} }));
  inner.use(async (c, next) => {
    sessions += c.var.session ? 1 : 0;
    await next();
  });
  inner.use(honoSessions(app.store, { onError: () => {} }));
  inner.get('/', (c) => {
    c.var.session.set('n', 1);
    return c.text('ok');
  });
  outer.route('/inner', inner);
  const nested = await get(`${await listenHono(outer.fetch)}/inner`);
  assert.is(nested.status, 200);
  assert.is(nested.cookies.length, 1, `one cookie: ${nested.cookies}`);
  assert.is(sessions, 1);
});

// Review findings: an error object thrown for many requests, error handlers
// that set no status, odd throws and odd Responses.
test("koa: an HttpError thrown for every request never carries one request's cookie to another, and is not changed", async () => {
  const koa = new Koa();
  koa.silent = true;
  const shared = Object.assign(new Error('log in first'), { status: 401, expose: true, headers: { 'WWW-Authenticate': 'Basic' } });
  koa.use(koaSessions(app.store, { onError: () => {} }));
  koa.use(async (ctx) => {
    if (ctx.query.set !== undefined) ctx.session.set('a', 1);
    if (ctx.query.renew !== undefined) ctx.session.renew();
    throw shared;
  });
  const url = await listenNode(createServer(koa.callback()));
  const first = await get(`${url}/?set`);
  assert.is(first.status, 401);
  assert.ok(cookieOf(first), `a 4xx commits its new session: ${first.cookies}`);
  assert.equal(shared.headers, { 'WWW-Authenticate': 'Basic' }, 'the thrown error is not changed');
  const second = await get(`${url}/`);
  assert.is(second.status, 401);
  assert.equal(second.cookies, [], "no other request's cookie");
  // A renew before the thrown 401: the new id reaches the browser through ctx.onerror.
  const renewed = await get(`${url}/?renew`, cookieOf(first));
  assert.ok(cookieOf(renewed) && cookieOf(renewed) !== cookieOf(first), `${renewed.cookies}`);
});

test('koa: a failed commit answered by an upstream catch that sets only a body is a 503 without cookies; a thrown string after renew() is a 500 with the new cookie', async () => {
  const down = new Koa();
  down.silent = true;
  down.use(async (ctx, next) => {
    try {
      await next();
    } catch {
      ctx.body = { error: 'sorry' };
    }
  });
  down.use(koaSessions(downStore(false), { onError: () => {} }));
  down.use(async (ctx) => {
    ctx.cookies.set('theme', 'dark');
    ctx.session.set('a', 1);
    ctx.throw(401);
  });
  const failed = await get(`${await listenNode(createServer(down.callback()))}/`);
  assert.is(failed.status, 503, 'never a 2xx for a write that was not stored');
  assert.equal(failed.cookies, []);
  const koa = new Koa();
  koa.silent = true;
  koa.use(koaSessions(app.store, { onError: () => {} }));
  koa.use(async (ctx) => {
    ctx.session.renew();
    throw 'not an error';
  });
  const url = await listenNode(createServer(koa.callback()));
  const id = (await app.store.put(null, { user: 'ada' }))!;
  const reply = await get(`${url}/`, `sid=${id}`);
  assert.is(reply.status, 500);
  const next = cookieOf(reply);
  assert.ok(next && next !== `sid=${id}`, `the renewed id reaches the browser: ${reply.cookies}`);
  assert.equal(await app.store.get(idOf(next!)), { user: 'ada' });
});

test('hono: an app.onError that sets no status still answers a failed commit with 503; a thrown non-Error after renew() and Response.error() are 500s; shared and immutable Responses get their own cookie only', async () => {
  const down = new Hono<SessionEnv>();
  down.use(honoSessions(downStore(false), { onError: () => {} }));
  down.get('/', (c) => {
    c.var.session.set('a', 1);
    return c.text('stored?');
  });
  down.onError((_error, c) => c.json({ error: 'sorry' }));
  const failed = await get(`${await listenHono(down.fetch)}/`);
  assert.is(failed.status, 503, 'never a 2xx for a write that was not stored');
  assert.equal(failed.cookies, []);

  const shared = new Response(null, { status: 204 });
  const hono = new Hono<SessionEnv>();
  const errors: string[] = [];
  hono.use(honoSessions(app.store, { onError: (error) => errors.push(error.message) }));
  hono.get('/odd', (c) => {
    c.var.session.renew();
    throw 'not an error';
  });
  hono.get('/no-answer', (c) => {
    c.var.session.set('lost', true);
    return Response.error();
  });
  hono.get('/shared', (c) => {
    c.var.session.set('n', 1);
    return shared;
  });
  hono.get('/moved', (c) => {
    c.var.session.set('m', 1);
    return Response.redirect('http://127.0.0.1/elsewhere', 302);
  });
  const url = await listenHono(hono.fetch);
  const id = (await app.store.put(null, { user: 'ada' }))!;
  const odd = await get(`${url}/odd`, `sid=${id}`);
  assert.is(odd.status, 500);
  const next = cookieOf(odd);
  assert.ok(next && next !== `sid=${id}`, `the renewed id reaches the browser: ${odd.cookies}`);
  assert.equal(await app.store.get(idOf(next!)), { user: 'ada' });
  const other = (await app.store.put(null, { user: 'bob' }))!;
  const noAnswer = await get(`${url}/no-answer`, `sid=${other}`);
  assert.is(noAnswer.status, 500);
  assert.equal(await app.store.get(other), { user: 'bob' }, 'nothing stored');
  assert.ok(
    errors.some((message) => /must answer a Response/.test(message)),
    errors.join('; '),
  );
  const a = await get(`${url}/shared`);
  const b = await get(`${url}/shared`);
  assert.is(a.status, 204);
  assert.equal([a.cookies.length, b.cookies.length], [1, 1], `each its own cookie only: ${a.cookies} / ${b.cookies}`);
  assert.is.not(cookieOf(a), cookieOf(b));
  assert.equal(shared.headers.getSetCookie(), [], 'the shared Response is never changed');
  const moved = await get(`${url}/moved`);
  assert.is(moved.status, 302);
  assert.ok(cookieOf(moved), 'an immutable redirect gets its cookie');
});

test.run();
