// A real browser (Debian's Chromium, driven by playwright-core) against the
// example server, run as `npm start` runs it, on a temp database.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSessionApp, createHandler } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must run the browser test (.ci/run installs it)`);
if (!available) console.log(`skipped: ${CHROMIUM} is not installed (apt-get install chromium); CI runs this test`);

const temp = tempDir();
let server: ChildProcess;
let base = '';
let context: BrowserContext;
let browser: Browser | undefined;

test.before(async () => {
  if (!available) return;
  const script = fileURLToPath(new URL('../examples/server.ts', import.meta.url));
  server = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: '0', DATABASE: join(temp.dir, 'browser.db') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the example server did not start')), 15000);
    server.stdout!.on('data', (chunk: Buffer) => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(String(chunk));
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  context = await chromium.launchPersistentContext(join(temp.dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

test.after(async () => {
  await context?.close();
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  temp.remove();
});

const browserTest = available ? test : test.skip;

browserTest('the counter goes 1, 2, 3; the HttpOnly cookie is hidden from scripts; log out starts over', async () => {
  const page = await context.newPage();
  const counts: string[] = [];
  for (let i = 0; i < 3; i++) {
    await page.goto(`${base}/`);
    counts.push((await page.textContent('#visits'))!.trim());
  }
  assert.equal(counts, ['1', '2', '3']);

  // Evaluated in the page: the browser's own view of the cookie jar.
  const visible = (await page.evaluate('document.cookie')) as string;
  assert.not.match(visible, /sid=/, 'document.cookie must not show the HttpOnly session cookie');
  const cookies = await context.cookies(base);
  const sid = cookies.find((cookie) => cookie.name === 'sid');
  assert.ok(sid, 'the browser holds the session cookie');
  assert.is(sid!.httpOnly, true);
  assert.is(sid!.sameSite, 'Lax');

  await page.fill('input[name=name]', 'Ada <script>');
  await Promise.all([page.waitForURL(`${base}/`), page.click('#save-name')]);
  assert.is((await page.textContent('#greeting'))!.trim(), 'Hello, Ada <script>!', 'stored, and escaped');
  assert.is((await page.textContent('#visits'))!.trim(), '4');

  await Promise.all([page.waitForURL(`${base}/`), page.click('#renew')]);
  const renewed = (await context.cookies(base)).find((cookie) => cookie.name === 'sid');
  assert.is.not(renewed!.value, sid!.value, 'renew gives a new id');
  assert.is((await page.textContent('#visits'))!.trim(), '5', 'the data came along');

  await Promise.all([page.waitForURL(`${base}/`), page.click('#logout')]);
  assert.is((await page.textContent('#visits'))!.trim(), '1', 'after log out the counter starts over');
  assert.is((await page.textContent('#greeting'))!.trim(), 'No name stored yet.');
  assert.is((await page.textContent('#app-state'))!.trim(), 'running');
  await page.close();
});

browserTest('two devices of one user: the second sees both, revokes the first, which is logged out on its next page load', async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  const devices: Page[] = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${base}/`);
    await page.fill('input[name=user]', 'grace');
    // The first device ticks "remember me": a 30-day session, and a persistent cookie in the browser's jar.
    if (i === 0) await page.check('#remember');
    await Promise.all([page.waitForURL(`${base}/`), page.click('#login')]);
    assert.match((await page.textContent('#owner'))!, /Logged in as grace/);
    const [jar] = (await page.context().cookies()).filter((cookie) => cookie.name === 'sid');
    if (i === 0) assert.ok(Math.abs(jar.expires - (Date.now() / 1000 + 30 * 86400)) < 60, `a 30-day cookie: ${jar.expires}`);
    else assert.is(jar.expires, -1, 'without "remember me": a browser-session cookie');
    devices.push(page);
  }
  const [first, second] = devices;
  await second.reload();
  assert.is(await second.locator('tr.session').count(), 2, 'both devices listed');
  assert.is(await second.locator('.this-device').count(), 1, 'this device marked once');
  // The first device's handle, as the first device itself shows it.
  await first.reload();
  const firstHandle = await first.locator('tr.session:has(.this-device)').getAttribute('data-handle');
  assert.ok(firstHandle);
  await second.reload();
  await Promise.all([second.waitForURL(`${base}/`), second.locator(`tr.session[data-handle="${firstHandle}"] button.revoke`).click()]);
  assert.is(await second.locator('tr.session').count(), 1, 'only this device is left');
  await first.reload();
  assert.is(await first.locator('#owner').count(), 0, 'the first device is logged out');
  assert.is((await first.textContent('#visits'))!.trim(), '1', 'with a fresh session');
  assert.match((await second.textContent('#owner'))!, /grace/, 'the second is still logged in');
  // Log out other devices: log the first in again, then end it from the second.
  await first.fill('input[name=user]', 'grace');
  await Promise.all([first.waitForURL(`${base}/`), first.click('#login')]);
  await second.reload();
  assert.is(await second.locator('tr.session').count(), 2);
  await Promise.all([second.waitForURL(`${base}/`), second.click('#logout-others')]);
  assert.is(await second.locator('tr.session').count(), 1);
  await first.reload();
  assert.is(await first.locator('#owner').count(), 0);
});

for (const [framework, file] of [
  ['Express', 'express.ts'],
  ['Koa', 'koa.ts'],
  ['Hono', 'hono.ts'],
] as const) {
  browserTest(`the ${framework} front door end to end: count, log in, log out (examples/${file})`, async () => {
    const script = fileURLToPath(new URL(`../examples/${file}`, import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, PORT: '0', DATABASE: join(temp.dir, `${file}.db`) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the ${framework} example did not start`)), 15000);
        child.stdout!.on('data', (chunk: Buffer) => {
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(String(chunk));
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      browser ??= await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
      });
      const page = await (await browser.newContext()).newPage();
      const counts: string[] = [];
      for (let i = 0; i < 2; i++) {
        await page.goto(`${url}/`);
        counts.push((await page.textContent('#visits'))!.trim());
      }
      assert.equal(counts, ['1', '2']);
      await page.fill('input[name=user]', 'ada');
      await Promise.all([page.waitForURL(`${url}/`), page.click('#login')]);
      assert.match((await page.textContent('#owner'))!, /Logged in as ada/);
      assert.is((await page.textContent('#visits'))!.trim(), '3', 'the login kept the data (renew)');
      await Promise.all([page.waitForURL(`${url}/`), page.click('#logout')]);
      assert.is((await page.textContent('#visits'))!.trim(), '1', 'logged out: a fresh session');
      assert.is(await page.locator('#owner').count(), 0);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
}

browserTest(
  'requests in flight while the browser logs in do not log it out: the page after the login shows the user (a real cookie jar)',
  async () => {
    const app = await startSessionApp({ database: join(temp.dir, 'race.db'), sweepSignal: false });
    const server = createServer(
      createHandler(
        app.store,
        async (req, res, session) => {
          const url = new URL(req.url!, 'http://x');
          if (url.pathname === '/slow') {
            // An XHR of the login page that loaded the session before the login and commits after it.
            await new Promise((resolve) => setTimeout(resolve, 300));
            session.set(`poll${url.searchParams.get('n')}`, true);
            res.end('ok');
          } else if (url.pathname === '/login' && req.method === 'POST') {
            session.renew();
            session.setOwner('ada');
            session.set('user', 'ada');
            res.end('welcome');
          } else {
            session.set('visits', ((session.get('visits') as number | undefined) ?? 0) + 1);
            res.setHeader('content-type', 'text/html; charset=utf-8');
            res.end(`<!doctype html><p id="user">${session.get('user') ?? 'nobody'}</p>
        <button id="login" onclick="login()">Log in</button>
        <script>
          async function login() {
            const polls = [1, 2, 3].map((n) => fetch('/slow?n=' + n));
            await new Promise((resolve) => setTimeout(resolve, 100));
            await fetch('/login', { method: 'POST' });
            await Promise.all(polls);
            location.href = '/';
          }
        </script>`);
          }
        },
        { onError: () => {} },
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      browser ??= await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
      });
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${url}/`);
      assert.is((await page.textContent('#user'))!.trim(), 'nobody');
      // The page logs in, waits for its polls, then loads itself again.
      const reloaded = page.waitForEvent('load');
      await page.click('#login');
      await reloaded;
      assert.is(
        (await page.textContent('#user'))!.trim(),
        'ada',
        'still logged in after the polls that started before the login came back',
      );
      assert.is((await app.store.sessionsOf('ada')).length, 1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await app.stop();
    }
  },
);

test.run();
