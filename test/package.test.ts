// The package as a user gets it: `npm pack` (prepack builds dist/), the
// tarball installed into a fresh project outside the checkout, then imported,
// run and its bin called there — on Node 24 and on the lowest Node in engines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { floorNode, runScript, tempDir } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const temp = tempDir('pack-test-');
const project = join(temp.dir, 'consumer');
/** The tarball `npm pack` made (the first test), installed again by the Express 4.17 test. */
let tarball = '';
test.after(() => temp.remove());

const run = (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(command, args, { cwd, encoding: 'utf8', env, timeout: 240_000 });

// What a user's first script does: a write, a crash of the store actor, a read
// across it, one request served through createHandler, a clean stop.
// One GET of the script's server, as a user's script would make it: { status, body, cookies }.
const GET_ONCE = `
const get = () => new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: server.address().port, path: '/' }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => { body += chunk; });
    res.on('end', () => resolve({ status: res.statusCode, body, cookies: res.headers['set-cookie'] ?? [] }));
  }).on('error', reject);
});
`;

const USE = `
import http from 'node:http';
import { startSessionApp, createHandler, ConfigError } from 'supervised-sessions';
const app = await startSessionApp({ database: 'consumer.db', sweepSignal: false });
const id = await app.store.put(null, { user: 'ada' });
await app.kill('store');
const read = await app.store.get(id);
const server = http.createServer(createHandler(app.store, (req, res, session) => {
  session.set('visits', (session.get('visits') ?? 0) + 1);
  res.end('visits: ' + session.get('visits'));
}, { secret: 's3cret' }));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
${GET_ONCE}
const got = await get();
const reply = { status: got.status, body: got.body, cookie: got.cookies[0]?.split('=')[0] };
server.close();
const restarts = app.status().children.store.restarts;
await app.stop();
// The frameworks are optional peers, not installed here: the main entry loaded none, a front door says what to install
// (the Web one needs none: Request and Response are Node's own).
const frontDoors = {};
for (const name of ['express', 'fastify', 'express-session', 'koa', 'hono', 'web']) {
  frontDoors[name] = await import('supervised-sessions/' + name).then(() => 'loaded', (error) => error.message);
}
console.log(JSON.stringify({ read, restarts, reply, config: new ConfigError('k', 'm').code, frontDoors }));
`;

// The Express front door on the oldest Express 4 the peer range claims: one
// request through sessions(app.store) that changes its session.
const EXPRESS_4_17 = `
import http from 'node:http';
import express from 'express';
import { startSessionApp } from 'supervised-sessions';
import { sessions } from 'supervised-sessions/express';
const app = await startSessionApp({ database: 'x.db', sweepSignal: false });
const web = express();
web.use(sessions(app.store));
web.get('/', (req, res) => {
  req.session.set('n', 1);
  res.send('ok');
});
const server = http.createServer(web);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
${GET_ONCE}
const reply = await get();
await new Promise((resolve) => server.close(resolve));
await app.stop();
const expressVersion = (await import('express/package.json', { with: { type: 'json' } })).default.version;
console.log(JSON.stringify({ status: reply.status, body: reply.body, hasCookie: reply.cookies.some((line) => line.startsWith('sid=')), expressVersion }));
`;

// The Koa and Hono front doors on the oldest Koa 2 and Hono 4 the peer
// ranges claim: a request that stores, a ctx.throw(401) that commits, a
// redirect, a store that is down.
const OLDEST_KOA_HONO = `
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import Koa from 'koa';
import { Hono } from 'hono';
import { startSessionApp, StoreUnavailableError } from 'supervised-sessions';
import { sessions as koaSessions } from 'supervised-sessions/koa';
import { sessions as honoSessions } from 'supervised-sessions/hono';
const app = await startSessionApp({ database: 'x.db', sweepSignal: false });
const koa = new Koa();
koa.silent = true;
koa.use(koaSessions(app.store));
koa.use(async (ctx) => {
  ctx.session.set(ctx.query.deny !== undefined ? 'denied' : 'n', 1);
  if (ctx.query.deny !== undefined) ctx.throw(401, 'no');
  ctx.body = 'ok';
});
const server = http.createServer(koa.callback());
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
${GET_ONCE}
const koaReply = await get();
const sid = koaReply.cookies[0].split(';')[0].slice(4);
const denied = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: server.address().port, path: '/?deny', headers: { cookie: 'sid=' + sid } }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode));
  }).on('error', reject);
});
await new Promise((resolve) => server.close(resolve));
const hono = new Hono();
hono.use(honoSessions(app.store));
hono.get('/', (c) => {
  c.var.session.set('n', 1);
  return c.text('ok');
});
hono.get('/redirect', (c) => {
  c.get('session').set('m', 1);
  return Response.redirect('http://x/', 302);
});
const shared = new Response(null, { status: 204 });
hono.get('/shared', (c) => {
  c.get('session').set('s', 1);
  return shared;
});
const read = async (response) => ({ status: response.status, body: await response.text(), hasCookie: response.headers.getSetCookie().some((line) => line.startsWith('sid=')) });
const honoReply = await read(await hono.fetch(new Request('http://x/')));
const redirect = await read(await hono.fetch(new Request('http://x/redirect')));
const sharedA = await read(await hono.fetch(new Request('http://x/shared')));
const sharedB = await read(await hono.fetch(new Request('http://x/shared')));
const sharedOk = sharedA.hasCookie && sharedB.hasCookie && shared.headers.getSetCookie().length === 0;
const down = new Hono();
const unavailable = () => Promise.reject(new StoreUnavailableError('down for the test'));
down.use(honoSessions({ get: unavailable, put: unavailable, patch: unavailable }, { onError: () => {} }));
down.get('/', (c) => { c.var.session.set('n', 1); return c.text('stored?'); });
const failed = await read(await down.fetch(new Request('http://x/')));
await app.stop();
// hono's exports do not name its package.json: read from node_modules.
const version = async (name) => JSON.parse(await readFile('node_modules/' + name + '/package.json', 'utf8')).version;
console.log(JSON.stringify({
  koa: { status: koaReply.status, body: koaReply.body, hasCookie: koaReply.cookies.some((line) => line.startsWith('sid=')), denied, stored: await (async () => { const again = await startSessionApp({ database: 'x.db', sweepSignal: false }); const data = await again.store.get(sid); await again.stop(); return data; })() },
  hono: honoReply,
  redirect,
  sharedOk,
  failed: { status: failed.status, hasCookie: failed.hasCookie },
  versions: [await version('koa'), await version('hono')],
}));
`;

test('npm pack builds the package; its tarball holds dist, bin, docs and LICENSE, not src', () => {
  const pack = run('npm', ['pack', '--pack-destination', temp.dir, '--json'], root);
  assert.is(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info.files.map((file) => file.path);
  for (const file of [
    'dist/index.js',
    'dist/index.d.ts',
    'dist/engines/sqlite/store-worker.js',
    'dist/engines/postgres/store-worker.js',
    'dist/cleaner/sweep-task.js',
    'dist/cli.js',
    'bin/supervised-sessions.js',
    'LICENSE',
    'package.json',
    'README.md',
  ]) {
    assert.ok(files.includes(file), `the tarball holds ${file}`);
  }
  assert.not.ok(
    files.some((file) => file.startsWith('src/') || file.startsWith('test/')),
    'no sources or tests',
  );
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  tarball = join(temp.dir, info.filename);
  const install = run('npm', ['install', '--no-audit', '--no-fund', tarball], project);
  assert.is(install.status, 0, install.stderr);
  writeFileSync(join(project, 'use.mjs'), USE);
});

for (const which of ['24', 'floor'] as const) {
  test(`the installed tarball on Node ${which === '24' ? process.versions.node : 'of engines (lowest)'}: import, write → kill(store) → read, a request, npx supervised-sessions stats`, async () => {
    const node = which === '24' ? process.execPath : floorNode().path;
    const result = await runScript(join(project, 'use.mjs'), [], { cwd: project, node, timeoutMs: 60_000 });
    assert.is(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout.trim().split('\n').pop()!), {
      read: { user: 'ada' },
      restarts: 1,
      reply: { status: 200, body: 'visits: 1', cookie: 'sid' },
      config: 'ERR_SESSION_CONFIG',
      frontDoors: {
        express: 'supervised-sessions/express needs the "express" package, which is not installed: npm install express',
        fastify: 'supervised-sessions/fastify needs the "fastify" package, which is not installed: npm install fastify',
        'express-session':
          'supervised-sessions/express-session needs the "express-session" package, which is not installed: npm install express-session',
        koa: 'supervised-sessions/koa needs the "koa" package, which is not installed: npm install koa',
        hono: 'supervised-sessions/hono needs the "hono" package, which is not installed: npm install hono',
        web: 'loaded',
      },
    });
    // npx runs the bin with the first node on PATH: this one. A preloaded
    // probe records which Node ran the bin itself.
    const probe = join(project, 'probe.mjs');
    const seen = join(project, `ran-${which}.txt`);
    writeFileSync(
      probe,
      `import { appendFileSync } from 'node:fs';\nif (process.argv[1]?.includes('supervised-sessions')) appendFileSync(${JSON.stringify(seen)}, process.version + '\\n');\n`,
    );
    const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, NODE_OPTIONS: `--import=${pathToFileURL(probe).href}` };
    const stats = run('npx', ['--no-install', 'supervised-sessions', 'stats', '--database', 'consumer.db'], project, env);
    assert.is(stats.status, 0, stats.stderr);
    assert.match(stats.stdout, /^live: \d+$/m);
    assert.match(stats.stdout, /^bytes: \d+$/m);
    const expected = which === '24' ? process.version : `v${floorNode().version}`;
    assert.equal(readFileSync(seen, 'utf8').trim().split('\n'), [expected], 'the bin ran on that Node');
  });
}

test('the tarball installs beside express@4.17.0 (the oldest Express the peer range claims, no ERESOLVE) and its Express front door serves a session there', async () => {
  assert.ok(tarball, 'the npm pack test ran first');
  const oldest = join(temp.dir, 'express-4.17');
  mkdirSync(oldest, { recursive: true });
  writeFileSync(join(oldest, 'package.json'), JSON.stringify({ name: 'express-4-17', private: true, type: 'module' }));
  const install = run('npm', ['install', '--no-audit', '--no-fund', tarball, 'express@4.17.0'], oldest);
  assert.is(install.status, 0, install.stderr);
  assert.not.match(`${install.stdout}\n${install.stderr}`, /ERESOLVE/, 'no peer conflict');
  writeFileSync(join(oldest, 'use-express.mjs'), EXPRESS_4_17);
  const result = await runScript(join(oldest, 'use-express.mjs'), [], { cwd: oldest, timeoutMs: 60_000 });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout.trim().split('\n').pop()!), { status: 200, body: 'ok', hasCookie: true, expressVersion: '4.17.0' });
});

test('the tarball installs beside koa@2.0.0 and hono@4.0.0 (the oldest the peer ranges claim, no ERESOLVE) and both front doors serve sessions there', async () => {
  assert.ok(tarball, 'the npm pack test ran first');
  const oldest = join(temp.dir, 'koa-2.0-hono-4.0');
  mkdirSync(oldest, { recursive: true });
  writeFileSync(join(oldest, 'package.json'), JSON.stringify({ name: 'koa-2-hono-4', private: true, type: 'module' }));
  const install = run('npm', ['install', '--no-audit', '--no-fund', tarball, 'koa@2.0.0', 'hono@4.0.0'], oldest);
  assert.is(install.status, 0, install.stderr);
  assert.not.match(`${install.stdout}\n${install.stderr}`, /ERESOLVE/, 'no peer conflict');
  writeFileSync(join(oldest, 'use-koa-hono.mjs'), OLDEST_KOA_HONO);
  const result = await runScript(join(oldest, 'use-koa-hono.mjs'), [], { cwd: oldest, timeoutMs: 60_000 });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout.trim().split('\n').pop()!), {
    koa: { status: 200, body: 'ok', hasCookie: true, denied: 401, stored: { n: 1, denied: 1 } },
    hono: { status: 200, body: 'ok', hasCookie: true },
    redirect: { status: 302, body: '', hasCookie: true },
    sharedOk: true,
    failed: { status: 503, hasCookie: false },
    versions: ['2.0.0', '4.0.0'],
  });
});

test('npm install from git builds dist (prepare) and the package runs', async () => {
  const fromGit = join(temp.dir, 'from-git');
  mkdirSync(fromGit, { recursive: true });
  writeFileSync(join(fromGit, 'package.json'), JSON.stringify({ name: 'from-git', private: true, type: 'module' }));
  // The committed tree of this checkout, as `npm install git+https://…` would fetch it.
  const install = run('npm', ['install', '--no-audit', '--no-fund', `git+${pathToFileURL(root).href}`], fromGit);
  assert.is(install.status, 0, install.stderr);
  writeFileSync(join(fromGit, 'use.mjs'), USE);
  const result = await runScript(join(fromGit, 'use.mjs'), [], { cwd: fromGit, timeoutMs: 60_000 });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout.trim().split('\n').pop()!).read, { user: 'ada' });
});

test.run();
