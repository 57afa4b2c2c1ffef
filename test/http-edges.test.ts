// The rules at the edges (docs/http.md): a handler that misuses `res` or changes
// its session at odd moments never kills the server, never gets a 2xx for a
// change that was not stored, and sees Node's own errors where it made them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, OutgoingMessage, ServerResponse, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import {
  startSessionApp,
  createHandler,
  SessionError,
  StoreUnavailableError,
  type SessionApp,
  type SessionHandler,
  type HandlerOptions,
  type Session,
} from '../src/index.ts';
import { sign, unsign } from '../src/http/signing.ts';
import { downStore, sleep, tempDir, until } from './helpers.ts';
import { storeLocation } from './engines.ts';

const temp = tempDir();
let app: SessionApp;
const servers: Array<() => Promise<void>> = [];
const escaped: unknown[] = [];
const onEscape = (error: unknown) => {
  escaped.push(error);
};
const errors: Error[] = [];

test.before(async () => {
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  app = await startSessionApp({ ...(await storeLocation(temp.dir, 'edges')), sweepSignal: false });
});
test.before.each(() => {
  errors.length = 0;
});
test.after.each(async () => {
  // Let anything a handler left behind settle, then check nothing escaped.
  await sleep(30);
  assert.equal(escaped.map(String), [], 'no unhandled rejection and no uncaught exception');
});
test.after(async () => {
  for (const close of servers) await close();
  await app.stop();
  temp.remove();
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
});

async function listen(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(listener);
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

const serve = (handler: SessionHandler, options?: HandlerOptions) =>
  listen(createHandler(app.store, handler, { onError: (error) => errors.push(error), ...options }));

interface Reply {
  status: number;
  body: string;
  cookies: string[];
  headers: Record<string, string | string[] | undefined>;
}

async function get(url: string, cookie?: string): Promise<Reply> {
  const response = await request(url, { headers: cookie ? { cookie } : {}, headersTimeout: 5000, bodyTimeout: 5000 });
  const body = await response.body.text();
  const raw = response.headers['set-cookie'];
  return {
    status: response.statusCode,
    body,
    cookies: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw],
    headers: response.headers,
  };
}

/** The response fails to arrive whole (the connection was cut). */
async function cut(url: string, cookie?: string): Promise<boolean> {
  try {
    await get(url, cookie);
    return false;
  } catch {
    return true;
  }
}

const cookieOf = (reply: Reply) => reply.cookies.find((line) => line.startsWith('sid='))?.split(';')[0];

/** A live session with `data`, and the cookie that names it. */
async function existing(data: Record<string, string | number> = { user: 'ada' }): Promise<{ id: string; cookie: string }> {
  const id = (await app.store.put(null, data))!;
  return { id, cookie: `sid=${id}` };
}

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'none';
  } catch (error) {
    return String((error as { code?: string }).code ?? (error as Error).name);
  }
}

// Each mistake runs after the session changed (so the response is held),
// and the same mistake runs on a bare node:http server: the codes must agree.
const mistakes: Record<string, (res: ServerResponse) => string[]> = {
  'an invalid header character in writeHead': (res) => [codeOf(() => res.writeHead(302, { location: '/€' }))],
  'an invalid header name in writeHead': (res) => [codeOf(() => res.writeHead(200, { 'bad name': 'x' }))],
  'a status out of range': (res) => [codeOf(() => res.writeHead(42))],
  'a status message with a newline': (res) => [codeOf(() => res.writeHead(200, 'OK\r\nX-Evil: 1'))],
  'an odd header array': (res) => [codeOf(() => res.writeHead(200, ['x-a'] as never))],
  'a second writeHead': (res) => [codeOf(() => res.writeHead(200)), codeOf(() => res.writeHead(201))],
  'setHeader after writeHead': (res) => [codeOf(() => res.writeHead(200)), codeOf(() => res.setHeader('x-late', '1'))],
  'a number passed to end()': (res) => [codeOf(() => res.end(123 as never))],
  'an object passed to write()': (res) => [codeOf(() => res.write({} as never))],
  'null passed to write()': (res) => [codeOf(() => res.write(null as never))],
  'a status out of range sent by end()': (res) => {
    res.statusCode = 42;
    return [codeOf(() => res.end())];
  },
  'a status message with a newline sent by write()': (res) => {
    res.statusMessage = 'a\nb';
    return [codeOf(() => res.write('x'))];
  },
  'a status message with a newline, then writeHead(200)': (res) => {
    res.statusMessage = 'a\nb';
    return [codeOf(() => res.writeHead(200))];
  },
};

// Node accepts these; so must a held response.
const accepted: Record<string, (res: ServerResponse) => string[]> = {
  'headers as [name, value] pairs': (res) => [
    codeOf(() =>
      res.writeHead(200, [
        ['x-a', '1'],
        ['x-b', '2'],
      ] as never),
    ),
  ],
};

for (const [name, mistake] of [...Object.entries(mistakes), ...Object.entries(accepted)]) {
  test(`${name}: thrown synchronously in the handler, as without sessions; the server lives`, async () => {
    const answer = (res: ServerResponse, codes: string[]) => {
      // Node keeps a refused status line; a fresh one lets the answer go out.
      res.statusMessage = '';
      res.statusCode = 200;
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(codes));
    };
    // Node's own codes are taken in the handler: after some of these mistakes
    // a bare response never completes (end() leaves the socket corked).
    const seen: string[][] = [];
    const bare = await listen((_req, res) => {
      seen.push(mistake(res));
      answer(res, seen[0]);
    });
    const ours = await serve((_req, res, session) => {
      session.set('touched', true);
      answer(res, mistake(res));
    });
    void get(bare).catch(() => {});
    await until(() => seen.length > 0, 5000, 'the bare handler');
    const expected = seen[0];
    if (name in mistakes)
      assert.ok(
        expected.some((code) => code.startsWith('ERR_')),
        `node itself refuses it: ${expected}`,
      );
    else assert.is(expected[0], 'none', 'node accepts it');
    const reply = await get(ours);
    assert.is(reply.status, 200);
    assert.equal(JSON.parse(reply.body), expected);
    // Stored: the mistake was caught by the handler, which then answered normally.
    const cookie = cookieOf(reply)!;
    assert.equal(await app.store.get(cookie.slice(4)), { touched: true });
  });
}

test('a handler that does not catch its header mistake gets a 500; the process lives and nothing is stored', async () => {
  const before = await app.store.count();
  const url = await serve((req, res, session) => {
    session.set('next', new URL(req.url!, 'http://x').searchParams.get('next'));
    res.writeHead(302, { location: new URL(req.url!, 'http://x').searchParams.get('next')! });
    res.end();
  });
  const reply = await get(`${url}/?next=/%E2%82%AC`);
  assert.is(reply.status, 500);
  assert.equal(reply.cookies, [], 'no session cookie on the error');
  assert.is(errors.length, 1);
  assert.is((errors[0] as { code?: string }).code, 'ERR_INVALID_CHAR');
  assert.is(await app.store.count(), before, 'no session was stored');
  // The server still answers.
  assert.is((await get(`${url}/?next=/ok`)).status, 302);
});

test('a change made while the commit is in flight is stored too: set, writeHead, set, end', async () => {
  const { id, cookie } = await existing({});
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.writeHead(200);
    session.set('b', 2);
    res.end('ok');
  });
  assert.is((await get(url, cookie)).status, 200);
  assert.equal(await app.store.get(id), { a: 1, b: 2 });
});

test('a change between two writes, and one right before end(), on a new session: all stored', async () => {
  const url = await serve(async (_req, res, session) => {
    session.set('a', 1);
    res.write('one ');
    session.set('b', 2);
    await sleep(20);
    res.write('two ');
    session.set('c', 3);
    res.end('three');
  });
  const reply = await get(url);
  assert.is(reply.status, 200);
  assert.is(reply.body, 'one two three');
  const cookie = cookieOf(reply)!;
  assert.equal(await app.store.get(cookie.slice(4)), { a: 1, b: 2, c: 3 });
});

test('drop() after the headers went out (streaming) still deletes the session before the response completes', async () => {
  const { id, cookie } = await existing();
  const url = await serve(async (_req, res, session) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('streaming... ');
    await sleep(20);
    session.drop();
    res.end('bye');
  });
  const reply = await get(url, cookie);
  assert.is(reply.body, 'streaming... bye');
  assert.is(await app.store.get(id), null, 'logged out');
});

test('drop() while the commit is in flight deletes the session and expires the cookie', async () => {
  const { id, cookie } = await existing();
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.writeHead(200);
    session.drop();
    res.end();
  });
  const reply = await get(url, cookie);
  assert.is(await app.store.get(id), null);
  assert.ok(
    reply.cookies.some((line) => /^sid=;.*Max-Age=0/.test(line)),
    `expired: ${reply.cookies}`,
  );
});

test('drop() of a new session whose creation is in flight: nothing stays stored, no cookie', async () => {
  const before = await app.store.count();
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.writeHead(200);
    session.drop();
    res.end();
  });
  const reply = await get(url);
  assert.is(reply.status, 200);
  assert.equal(reply.cookies, []);
  assert.is(await app.store.count(), before);
});

test('renew() once the headers are out throws ERR_SESSION_HEADERS_SENT; the old id gains nothing', async () => {
  const { id, cookie } = await existing({ role: 'guest' });
  const url = await serve((_req, res, session) => {
    res.writeHead(200);
    res.write('x');
    // The fixation case: a privilege meant for a new id.
    session.renew();
    session.set('role', 'admin');
    res.end();
  });
  assert.ok(await cut(url, cookie), 'the response is cut short, never completed');
  assert.is(errors.length, 1);
  assert.instance(errors[0], SessionError);
  assert.is((errors[0] as SessionError).code, 'ERR_SESSION_HEADERS_SENT');
  assert.equal(await app.store.get(id), { role: 'guest' });
});

test('renew() while the commit is in flight throws ERR_SESSION_HEADERS_SENT', async () => {
  const { cookie } = await existing();
  let code = '';
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.writeHead(200);
    code = codeOf(() => session.renew());
    res.end();
  });
  assert.is((await get(url, cookie)).status, 200);
  assert.is(code, 'ERR_SESSION_HEADERS_SENT');
});

test('a change after end() throws ERR_SESSION_COMMITTED, whether the response was held or not', async () => {
  const codes: string[] = [];
  const url = await serve((req, res, session) => {
    if (req.url === '/held') session.set('a', 1);
    res.end('done');
    codes.push(codeOf(() => session.set('late', 1)));
    codes.push(codeOf(() => session.drop()));
  });
  const { cookie } = await existing();
  await get(`${url}/held`, cookie);
  await get(`${url}/plain`, cookie);
  assert.equal(codes, ['ERR_SESSION_COMMITTED', 'ERR_SESSION_COMMITTED', 'ERR_SESSION_COMMITTED', 'ERR_SESSION_COMMITTED']);
});

test('a new session changed after its headers went out: ERR_SESSION_HEADERS_SENT, never a cookie-less row', async () => {
  const before = await app.store.count();
  let code = '';
  const url = await serve((_req, res, session) => {
    res.writeHead(200);
    res.write('x');
    code = codeOf(() => session.set('a', 1));
    res.end();
  });
  assert.is((await get(url)).status, 200);
  assert.is(code, 'ERR_SESSION_HEADERS_SENT');
  assert.is(await app.store.count(), before);
});

test("the handler's headers object is never changed: a shared constant, a frozen object, header arrays", async () => {
  const shared = { 'content-type': 'text/plain', 'Set-Cookie': 'lang=en; Path=/' };
  const frozen = Object.freeze({ 'content-type': 'text/plain', 'Set-Cookie': Object.freeze(['a=1', 'b=2']) });
  const url = await serve((req, res, session) => {
    session.set('n', 1);
    if (req.url === '/shared') res.writeHead(200, shared);
    else if (req.url === '/frozen') res.writeHead(200, frozen as never);
    else res.writeHead(200, ['x-a', '1', 'x-a', '2', 'Set-Cookie', 'c=3']);
    res.end();
  });
  const first = await get(`${url}/shared`);
  const second = await get(`${url}/shared`);
  assert.equal(shared, { 'content-type': 'text/plain', 'Set-Cookie': 'lang=en; Path=/' }, 'the shared object is as it was');
  assert.is.not(cookieOf(first), cookieOf(second), 'each client gets its own session');
  assert.is(second.cookies.filter((line) => line.startsWith('sid=')).length, 1, 'one session cookie, its own');
  assert.ok(second.cookies.includes('lang=en; Path=/'));
  const third = await get(`${url}/frozen`);
  assert.is(third.status, 200);
  assert.is((await get(`${url}/frozen`)).status, 200, 'twice');
  assert.equal(frozen, { 'content-type': 'text/plain', 'Set-Cookie': ['a=1', 'b=2'] });
  assert.ok(third.cookies.includes('a=1') && third.cookies.includes('b=2') && cookieOf(third));
  const fourth = await get(`${url}/array`);
  assert.is(fourth.status, 200);
  assert.equal(fourth.headers['x-a'], ['1', '2']);
  assert.ok(fourth.cookies.includes('c=3') && cookieOf(fourth));
});

test('a signature is exactly the issued 43 characters: a percent-encoded look-alike is a bad signature', async () => {
  const secret = 'edge-secret';
  const { id } = await existing({ user: 'victim' });
  const good = sign(id, secret);
  const last = good.charCodeAt(good.length - 1);
  // A character whose low byte is the real last character (latin1 keeps only that byte).
  const lookalike = String.fromCharCode(last + 0x100);
  assert.is(unsign(good.slice(0, -1) + lookalike, [secret]), null);
  assert.is(unsign(good, [secret]), id);
  const url = await serve(
    (_req, res, session) => {
      res.end(JSON.stringify({ isNew: session.isNew }));
    },
    { secret },
  );
  const forged = `sid=${good.slice(0, -1)}${encodeURIComponent(lookalike)}`;
  assert.equal(JSON.parse((await get(url, forged)).body), { isNew: true }, 'not adopted');
  assert.equal(JSON.parse((await get(url, `sid=${good}`)).body), { isNew: false });
  // A percent-encoded form of the whole issued value is not the issued value either.
  const encoded = `%${good.charCodeAt(0).toString(16).toUpperCase()}${good.slice(1)}`;
  assert.equal(JSON.parse((await get(url, `sid=${encoded}`)).body), { isNew: true });
});

test("a held write keeps Node's backpressure contract: false past the high-water mark, then 'drain'", async () => {
  let returned: boolean | undefined;
  let drained = false;
  const chunk = Buffer.alloc(256 * 1024, 'x');
  const url = await serve(async (_req, res, session) => {
    session.set('a', 1);
    res.writeHead(200);
    returned = res.write(chunk);
    if (!returned)
      await new Promise<void>((resolve) =>
        res.once('drain', () => {
          drained = true;
          resolve();
        }),
      );
    res.end('!');
  });
  const reply = await get(url);
  assert.is(returned, false, 'a held chunk over the high-water mark asks the handler to wait');
  assert.ok(drained, "'drain' came");
  assert.is(reply.body.length, chunk.length + 1);
});

test('an unknown encoding is refused at write(), where Node would send a broken chunk', async () => {
  let code = '';
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    code = codeOf(() => res.write('x', 'klingon' as never));
    res.end('fine');
  });
  const reply = await get(url);
  assert.is(code, 'ERR_UNKNOWN_ENCODING');
  assert.is(reply.body, 'fine');
});

test('write() after end() reports to its callback, never as an uncaught error', async () => {
  let reported = '';
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.end('done');
    res.write('late', (error) => {
      reported = String((error as { code?: string } | null)?.code);
    });
  });
  const reply = await get(url);
  assert.is(reply.body, 'done');
  await sleep(20);
  assert.is(reply.status, 200);
  assert.is(reported, 'ERR_STREAM_WRITE_AFTER_END');
});

test('a handler that throws after a held writeHead: 500, nothing sent of the held part', async () => {
  const { id, cookie } = await existing({ n: 0 });
  const url = await serve(async (_req, res, session) => {
    session.set('n', 1);
    res.writeHead(200, { 'x-part': 'held' });
    throw new Error('handler bug');
  });
  const reply = await get(url, cookie);
  assert.is(reply.status, 500);
  assert.is(reply.headers['x-part'], undefined);
  assert.is(errors[0]?.message, 'handler bug');
  // The patch may have landed before the handler failed; no 2xx claimed it.
  assert.ok([0, 1].includes((await app.store.get(id))!.n as number));
});

test('res.headersSent and res.writableEnded read back what the handler did, while held', async () => {
  const seen: boolean[] = [];
  const url = await serve((_req, res, session: Session) => {
    session.set('a', 1);
    seen.push(res.headersSent, res.writableEnded);
    res.writeHead(200);
    seen.push(res.headersSent, res.writableEnded);
    res.end();
    seen.push(res.headersSent, res.writableEnded);
  });
  await get(url);
  assert.equal(seen, [false, false, true, false, true, true]);
});

test('an invalid status sent by an uncaught end() gives a 500, not a hung response', async () => {
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.statusCode = 42;
    res.end('never');
  });
  const reply = await get(url);
  assert.is(reply.status, 500);
  assert.is((errors[0] as { code?: string }).code, 'ERR_HTTP_INVALID_STATUS_CODE');
});

test('the status line is fixed when the headers are written, as in Node: a later statusCode changes nothing', async () => {
  const url = await serve((_req, res, session) => {
    session.set('a', 1);
    res.writeHead(201);
    res.statusCode = 404;
    res.end();
  });
  assert.is((await get(url)).status, 201);
});

test('a callback-style handler that changes its session after a store failure: 503, the process lives', async () => {
  const url = await listen(
    createHandler(
      downStore(),
      (_req, res, session) => {
        session.set('a', 1);
        res.write('part');
        setTimeout(() => {
          session.set('b', 2);
          res.end('rest');
        }, 30);
      },
      { onError: (error) => errors.push(error) },
    ),
  );
  const reply = await get(url, `sid=${'A'.repeat(43)}`);
  assert.is(reply.status, 503);
  await sleep(60);
  assert.instance(errors[0], StoreUnavailableError);
});

test('write callbacks settle after a failed commit (a promisified write never hangs)', async () => {
  let settled = '';
  const url = await listen(
    createHandler(
      downStore(),
      async (_req, res, session) => {
        session.set('a', 1);
        res.writeHead(200);
        settled = await new Promise<string>((resolve) =>
          res.write('x', (error) => resolve(String((error as { code?: string } | null)?.code))),
        );
        res.end();
      },
      { onError: (error) => errors.push(error) },
    ),
  );
  assert.is((await get(url, `sid=${'A'.repeat(43)}`)).status, 503);
  await sleep(30);
  assert.is(settled, 'ERR_STREAM_DESTROYED');
});

test('an onError that throws: the response is still answered, the process lives', async () => {
  const throwing = {
    onError: () => {
      throw new Error('onError bug');
    },
  };
  const stderr = process.stderr.write;
  const lines: string[] = [];
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const failing = await listen(
      createHandler(
        app.store,
        () => {
          throw new Error('handler bug');
        },
        throwing,
      ),
    );
    assert.is((await get(failing)).status, 500);
    const down = await listen(
      createHandler(
        downStore(),
        (_req, res, session) => {
          session.set('a', 1);
          res.end();
        },
        throwing,
      ),
    );
    assert.is((await get(down, `sid=${'A'.repeat(43)}`)).status, 503);
  } finally {
    process.stderr.write = stderr;
  }
  assert.ok(
    lines.some((line) => /onError threw/.test(line)),
    lines.join(''),
  );
});

test('a session deleted while its commit was in flight: later changes are ignored, the response completes', async () => {
  const { id, cookie } = await existing({ n: 1 });
  let code = 'none';
  const url = await serve(async (_req, res, session) => {
    await app.store.delete(id); // another request logged out meanwhile
    session.set('a', 1);
    res.write('part ');
    await sleep(20);
    code = codeOf(() => session.set('b', 2));
    res.end('rest');
  });
  const reply = await get(url, cookie);
  assert.is(reply.body, 'part rest');
  assert.is(code, 'none');
  assert.is(await app.store.get(id), null, 'not brought back');
  assert.ok(
    reply.cookies.some((line) => /^sid=;/.test(line)),
    'its cookie expired',
  );
});

test('write() after end() on an untouched session is reported to onError, never an uncaught error', async () => {
  const url = await serve((_req, res) => {
    res.end('done');
    res.write('late');
  });
  assert.is((await get(url)).body, 'done');
  await sleep(20);
  assert.is((errors[0] as { code?: string }).code, 'ERR_STREAM_WRITE_AFTER_END');
});

// The held response's views of headersSent/writableEnded are its own
// properties: nothing process-wide changes, and every response the library
// never held — under its own handler, a plain server's, or one held by
// another copy of the package — reads Node's own values.
test("a held response's views are its own: Node's values for every response no copy of the package holds", async () => {
  const nodeHeadersSent = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'headersSent');
  const nodeEnded = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'writableEnded');
  // The built copy (npm test builds it first), beside this one.
  const other = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof import('../src/index.ts');
  const otherApp = await other.startSessionApp({ ...(await storeLocation(temp.dir, 'edges_copy')), sweepSignal: false });
  try {
    const seen: Record<string, unknown> = {};
    const held =
      (name: string): SessionHandler =>
      (_req, res, session) => {
        session.set('n', 1);
        res.writeHead(200);
        // Held until the commit: the handler's view says what it did.
        seen[`${name}: own views`] = Object.hasOwn(res, 'headersSent') && Object.hasOwn(res, 'writableEnded');
        seen[`${name}: headersSent after writeHead`] = res.headersSent;
        res.end('held');
        seen[`${name}: writableEnded after end`] = res.writableEnded;
      };
    const nodeValues = (name: string) => (res: ServerResponse) => {
      seen[`${name}: own views`] = Object.hasOwn(res, 'headersSent') || Object.hasOwn(res, 'writableEnded');
      seen[`${name}: before`] = [res.headersSent, res.writableEnded];
      res.writeHead(200);
      seen[`${name}: headersSent after writeHead`] = res.headersSent;
      res.end('plain');
      seen[`${name}: writableEnded after end`] = res.writableEnded;
    };
    const mine = await serve(held('mine'));
    const theirs = await listen(other.createHandler(otherApp.store, held('theirs'), { onError: (error) => errors.push(error) }));
    const reading = await serve((_req, res, session) => {
      session.get('n');
      nodeValues('unheld')(res);
    });
    const plain = await listen((_req, res) => nodeValues('plain')(res));
    for (const url of [mine, theirs, reading, plain, mine, theirs]) assert.is((await get(url)).status, 200);
    assert.equal(seen, {
      'mine: own views': true,
      'mine: headersSent after writeHead': true,
      'mine: writableEnded after end': true,
      'theirs: own views': true,
      'theirs: headersSent after writeHead': true,
      'theirs: writableEnded after end': true,
      'unheld: own views': false,
      'unheld: before': [false, false],
      'unheld: headersSent after writeHead': true,
      'unheld: writableEnded after end': true,
      'plain: own views': false,
      'plain: before': [false, false],
      'plain: headersSent after writeHead': true,
      'plain: writableEnded after end': true,
    });
    // Nothing process-wide: the prototypes are Node's.
    assert.is(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'headersSent'), undefined);
    assert.is(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'writableEnded'), undefined);
    assert.equal(Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'headersSent'), nodeHeadersSent);
    assert.equal(Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'writableEnded'), nodeEnded);
    assert.equal(errors, []);
  } finally {
    await otherApp.stop();
  }
});

test.run();
