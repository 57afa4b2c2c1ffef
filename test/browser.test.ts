// A real browser (Debian's Chromium, driven by playwright-core) against the
// example server, run as `npm start` runs it, on a temp database.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must run the browser test (.ci/run installs it)`);
if (!available) console.log(`skipped: ${CHROMIUM} is not installed (apt-get install chromium); CI runs this test`);

const temp = tempDir();
let server: ChildProcess;
let base = '';
let context: BrowserContext;

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
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
  });
  context = await chromium.launchPersistentContext(join(temp.dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

test.after(async () => {
  await context?.close();
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
  const visible = await page.evaluate('document.cookie') as string;
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

test.run();
