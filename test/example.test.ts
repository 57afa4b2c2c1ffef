// The example server (`npm start`), which newcomers copy: one request must not
// run it out of memory, and its state-changing routes refuse other sites.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { tempDir } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const temp = tempDir('example-test-');
let child: ChildProcess;
let url = '';
let output = '';

test.before(async () => {
  child = spawn(process.execPath, [join(root, 'examples', 'server.ts')], {
    env: { ...process.env, PORT: '0', DATABASE: join(temp.dir, 'example.db'), SESSIONS_ADMIN: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start: ${output}`)), 20000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
});

test.after(async () => {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  temp.remove();
});

async function call(path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Readable } = {}) {
  const response = await request(`${url}${path}`, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers,
    body: options.body,
    headersTimeout: 10000,
    bodyTimeout: 10000,
  });
  return { status: response.statusCode, body: await response.body.text(), headers: response.headers };
}

async function storeRestarts(): Promise<number> {
  return (JSON.parse((await call('/admin/status', { method: 'POST' })).body) as { children: { store: { restarts: number } } }).children
    .store.restarts;
}

test("/metrics serves the app's figures in the Prometheus text format, and sets no cookie", async () => {
  await call('/');
  const scrape = await call('/metrics');
  assert.is(scrape.status, 200);
  assert.match(String(scrape.headers['content-type']), /text\/plain; version=0\.0\.4/);
  assert.is(scrape.headers['set-cookie'], undefined);
  assert.match(scrape.body, /^supervised_sessions_up 1$/m);
  assert.match(scrape.body, /^supervised_sessions_store_calls_total\{op="create",outcome="ok"\} \d+$/m);
});

test('the status panel shows a few of the figures, and they follow the calls made', async () => {
  const cell = (body: string, id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(body)?.[1];
  const first = await call('/');
  const cookie = String(first.headers['set-cookie']).split(';')[0];
  const before = Number(cell(first.body, 'fig-calls'));
  assert.ok(before >= 1, `store calls shown: ${cell(first.body, 'fig-calls')}`);
  for (let i = 0; i < 3; i++) await call('/', { headers: { cookie } });
  const page = await call('/', { headers: { cookie } });
  // Each page view loads the session (and commits the counter, and lists nothing: no owner).
  assert.ok(Number(cell(page.body, 'fig-calls')) >= before + 4, `${before} then ${cell(page.body, 'fig-calls')}`);
  assert.is(cell(page.body, 'fig-failed'), '0');
  assert.match(cell(page.body, 'fig-mean') ?? '', /^\d+\.\d\d$/);
  assert.ok(Number(cell(page.body, 'fig-batch')) >= 1);
  assert.is(cell(page.body, 'fig-pending'), '0');
  // The same count as /metrics says.
  const scrape = (await call('/metrics')).body;
  const total = [...scrape.matchAll(/^supervised_sessions_store_calls_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  assert.ok(total >= Number(cell(page.body, 'fig-calls')));
});

test('a form body over 4 KiB gets a 413, not a 500', async () => {
  // One 8 KiB piece of a body announced as 100 MB, then wait for the answer:
  // the server has read all that was sent, so its close is clean.
  const { port } = new URL(url);
  const head = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`no answer: ${received}`));
    });
    socket.on('data', (chunk) => {
      received += chunk;
    });
    socket.on('close', () => resolve(received));
    socket.on('error', () => resolve(received));
    socket.write(
      `POST /name HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100000000\r\n\r\n`,
    );
    socket.write(`name=${'a'.repeat(8 * 1024)}`);
  });
  assert.match(head, /^HTTP\/1\.1 413 /, head.slice(0, 80));
});

test('an endless form body: the server stops reading it and stays up (bounded stream of 8 MiB)', async () => {
  let sent = 0;
  async function* endless(): AsyncIterable<Buffer> {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    // Bounded: at most 8 MiB, whatever the server does.
    while (sent < 8 * 1024 * 1024) {
      sent += chunk.length;
      yield chunk;
    }
  }
  // The 413 may be lost to a reset (the server closes while the client still sends): either is fine, a 500 is not.
  const reply = await call('/name', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: Readable.from(endless()),
  }).catch((error: Error) => ({ status: 0, body: error.message, headers: {} }));
  assert.ok(reply.status === 413 || reply.status === 0, `413 or a reset, not ${reply.status}: ${reply.body}`);
  assert.ok(sent < 8 * 1024 * 1024, `the server stopped reading (${sent} bytes sent)`);
  assert.is((await call('/')).status, 200, 'the server still answers');
});

test('a form within the limit is stored', async () => {
  const first = await call('/');
  const cookie = String(first.headers['set-cookie']).split(';')[0];
  const saved = await call('/name', {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'name=Ada',
  });
  assert.is(saved.status, 303);
  assert.match((await call('/', { headers: { cookie } })).body, /Hello, Ada!/);
});

test('admin routes: a GET does nothing (405), another site is refused (403), a same-origin POST works', async () => {
  const before = await storeRestarts();
  assert.is((await call('/admin/kill/store')).status, 405);
  assert.is((await call('/admin/kill/store', { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })).status, 403);
  assert.is((await call('/admin/kill/store', { method: 'POST', headers: { origin: 'http://evil.example' } })).status, 403);
  assert.is(await storeRestarts(), before, 'nothing was killed');
  const killed = await call('/admin/kill/store', { method: 'POST', headers: { 'sec-fetch-site': 'same-origin' } });
  assert.is(killed.status, 200);
  assert.is(await storeRestarts(), before + 1);
});

test('a logout posted from another site is refused; the session stays', async () => {
  const first = await call('/');
  const cookie = String(first.headers['set-cookie']).split(';')[0];
  assert.is((await call('/logout', { method: 'POST', headers: { cookie, 'sec-fetch-site': 'cross-site' } })).status, 403);
  assert.match((await call('/', { headers: { cookie } })).body, /id="visits">2</);
});

for (const [framework, file] of [
  ['Fastify', 'fastify.ts'],
  ['Koa', 'koa.ts'],
  ['Hono', 'hono.ts'],
] as const) {
  test(`the ${framework} example serves the same pages: count, log in, log out; a form too large is a 413`, async () => {
    const example = spawn(process.execPath, [join(root, 'examples', file)], {
      env: { ...process.env, PORT: '0', DATABASE: join(temp.dir, `${file}.db`) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    example.stderr!.on('data', (chunk) => {
      log += chunk;
    });
    try {
      const base = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the ${framework} example did not start: ${log}`)), 20000);
        example.stdout!.on('data', (chunk: Buffer) => {
          log += chunk;
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      const page = async (cookie?: string) => {
        const response = await request(`${base}/`, { headers: cookie ? { cookie } : {}, headersTimeout: 10000 });
        const set = response.headers['set-cookie'];
        return { body: await response.body.text(), cookie: set ? String(set).split(';')[0] : undefined };
      };
      const first = await page();
      assert.match(first.body, /id="visits">1</);
      let cookie = first.cookie!;
      assert.match((await page(cookie)).body, /id="visits">2</);
      const login = await request(`${base}/login`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'user=grace&remember=1',
      });
      await login.body.text();
      assert.is(login.statusCode, 303);
      assert.match(String(login.headers['set-cookie']), /; Max-Age=2592000(;|$)/, '"remember me": a 30-day cookie');
      cookie = String(login.headers['set-cookie']).split(';')[0];
      const after = await page(cookie);
      assert.match(after.body, /Logged in as <strong>grace<\/strong>/);
      assert.match(after.body, /id="visits">3</, 'the data came along');
      const tooBig = await request(`${base}/name`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: `name=${'a'.repeat(8192)}`,
      });
      await tooBig.body.text();
      assert.is(tooBig.statusCode, 413);
      const logout = await request(`${base}/logout`, { method: 'POST', headers: { cookie } });
      await logout.body.text();
      assert.match(String(logout.headers['set-cookie']), /^sid=;/);
      assert.match((await page(cookie)).body, /id="visits">1</, 'logged out');
    } finally {
      const exited = new Promise((resolve) => example.once('exit', resolve));
      example.kill('SIGTERM');
      await exited;
    }
  });
}

test.run();
