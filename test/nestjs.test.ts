// docs/nestjs.md's recipe, as a NestJS user builds it: its files, taken from
// the page, compiled by tsc with decorators, then booted on Express and on
// Fastify as real processes against the built package; a browser's requests
// through each (count, a 401 that commits, log in, log out) and a store that
// is down (503, no cookie).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { get as getDoor, cookieOf, type Reply } from './doors.ts';
import { request } from 'undici';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the checkout (git-ignored), so that NestJS resolves from node_modules.
const project = join(root, '.tmp', `nestjs-test-${process.pid}`);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const children: ChildProcess[] = [];

test.after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  if (!process.env.KEEP) rmSync(project, { recursive: true, force: true });
});

/** The page's `ts fragment` blocks that start with `// <file name>`. */
function recipeFiles(): Map<string, string> {
  const page = readFileSync(join(root, 'docs', 'nestjs.md'), 'utf8');
  const files = new Map<string, string>();
  for (const [, code] of page.matchAll(/```ts fragment\n([\s\S]*?)```/g)) {
    const name = /^\/\/ ([\w.]+\.ts)\n/.exec(code)?.[1];
    if (name) files.set(name, code);
  }
  return files;
}

// The listening port of the booted app (its listen(3000) gets port 0), and where its sessions go.
const PROBE = `
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') args[0] = 0;
  else if (args[0] && typeof args[0] === 'object' && 'port' in args[0]) args[0] = { ...args[0], port: 0 };
  this.once('listening', () => console.log('LISTENING ' + this.address().port));
  return listen.apply(this, args);
};
`;

// Not from the page: the same module on a store that is always down (the store's calls reject as unavailable).
const DOWN = (platform: 'express' | 'fastify') => `
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { StoreUnavailableError } from 'supervised-sessions';
${platform === 'express' ? "import { sessions } from 'supervised-sessions/express';" : "import { FastifyAdapter } from '@nestjs/platform-fastify';\nimport { fastifySessions } from 'supervised-sessions/fastify';"}
import { AppModule } from './app.module.js';
const down = () => Promise.reject(new StoreUnavailableError('down for the test'));
const store = { get: down, put: down, patch: down, renew: down, delete: down, count: down, sessionsOf: down, revoke: down, revokeAll: down } as any;
${
  platform === 'express'
    ? 'const app = await NestFactory.create(AppModule, { logger: false });\napp.use(sessions(store, { onError: () => {} }));'
    : 'const app = await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false });\nawait (app as any).register(fastifySessions, { store, onError: () => {} });'
}
await app.listen(3000, '127.0.0.1');
`;

test.before(() => {
  const src = join(project, 'src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'nest-consumer', private: true, type: 'module' }));
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(root, join(project, 'node_modules', 'supervised-sessions'), 'dir');
  const files = recipeFiles();
  assert.equal(
    [...files.keys()].sort(),
    ['app.controller.ts', 'app.module.ts', 'main.fastify.ts', 'main.ts', 'session.decorator.ts'],
    'the page gives every file',
  );
  for (const [name, code] of files) writeFileSync(join(src, name), code);
  writeFileSync(join(src, 'main.down.ts'), DOWN('express'));
  writeFileSync(join(src, 'main.fastify.down.ts'), DOWN('fastify'));
  writeFileSync(join(project, 'probe.mjs'), PROBE);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        skipLibCheck: true,
        rootDir: 'src',
        outDir: 'dist',
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      include: ['src'],
    }),
  );
  const build = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', timeout: 120_000 });
  assert.is(build.status, 0, `the page's files compile: ${build.stdout}${build.stderr}`);
});

/** Boots a compiled main; resolves with its base URL. */
async function boot(main: string, database: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', join(project, 'probe.mjs'), join(project, 'dist', main)], {
    cwd: project,
    env: { ...process.env, SESSION_SECRET: 'nest-secret', DATABASE: database },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (chunk) => {
    log += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${main} did not start: ${log}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${main} exited (${code}): ${log}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk;
      const match = /LISTENING (\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${match[1]}`);
      }
    });
  });
  return { url, child };
}

async function post(url: string, cookie: string): Promise<Reply> {
  const response = await request(url, { method: 'POST', headers: { cookie }, headersTimeout: 10_000 });
  const raw = response.headers['set-cookie'];
  return {
    status: response.statusCode,
    body: await response.body.json(),
    cookies: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw],
  };
}

async function stopped(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

for (const [platform, main] of [
  ['Express', 'main.js'],
  ['Fastify', 'main.fastify.js'],
] as const) {
  test(`NestJS on ${platform} (docs/nestjs.md): @Session() counts, a 401 commits, login renews and owns, logout drops; SIGTERM stops it`, async () => {
    const { url, child } = await boot(main, join(project, `${platform}.db`));
    const first = await getDoor(`${url}/`);
    assert.is(first.status, 200);
    assert.equal(first.body, { visits: 1, user: null });
    let cookie = cookieOf(first)!;
    assert.match(cookie, /^sid=[\w-]{43}\.[\w-]{43}$/, `a signed cookie: ${cookie}`);
    assert.equal((await getDoor(`${url}/`, cookie)).body, { visits: 2, user: null });
    const denied = await getDoor(`${url}/private`, cookie);
    assert.is(denied.status, 401);
    const login = await post(`${url}/login?user=ada`, cookie);
    assert.is(login.status, 200);
    const renewed = cookieOf(login)!;
    assert.ok(renewed && renewed !== cookie, 'login renews the id');
    assert.equal((await getDoor(`${url}/`, cookie)).body, { visits: 1, user: null }, 'the old id is dead');
    cookie = renewed;
    assert.equal((await getDoor(`${url}/`, cookie)).body, { visits: 3, user: 'ada' }, 'the data came along, owned');
    assert.equal((await getDoor(`${url}/private`, cookie)).body, { user: 'ada' });
    const logout = await post(`${url}/logout`, cookie);
    assert.ok(
      logout.cookies.some((line) => /^sid=;/.test(line)),
      `the cookie expires: ${logout.cookies}`,
    );
    assert.equal((await getDoor(`${url}/`, cookie)).body, { visits: 1, user: null }, 'logged out');
    assert.is(await stopped(child), 0, 'SIGTERM closes Nest, then the session app; the process exits');
  });

  test(`NestJS on ${platform}: a store that is down is a 503 without a session cookie`, async () => {
    const { url, child } = await boot(main.replace('.js', '.down.js'), join(project, 'unused.db'));
    const reply = await getDoor(`${url}/`);
    assert.is(reply.status, 503);
    assert.equal(reply.cookies, []);
    child.kill('SIGKILL');
  });
}

test.run();
