// The published form: `npm run build` emits dist/ (JS + .d.ts), and the
// package runs from it, worker entry files included (.js, not .ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runScript } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the checkout (git-ignored), so that dist/ resolves node_modules.
const out = join(root, '.tmp', `build-test-${process.pid}`);

test.after(() => rmSync(out, { recursive: true, force: true }));

test('the build emits JS and declarations, and the built package runs with its workers', async () => {
  mkdirSync(out, { recursive: true });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], {
    encoding: 'utf8',
  });
  assert.is(build.status, 0, build.stdout + build.stderr);
  for (const file of [
    'index.js',
    'index.d.ts',
    'engines/sqlite/store-worker.js',
    'engines/postgres/store-worker.js',
    'cleaner/sweep-task.js',
    'cli.js',
  ]) {
    assert.ok(existsSync(join(out, 'dist', file)), `dist/${file}`);
  }
  const script = join(out, 'use-dist.mjs');
  writeFileSync(
    script,
    `
    import { startSessionApp, createHandler, ConfigError } from './dist/index.js';
    const app = await startSessionApp({ database: ${JSON.stringify(join(out, 'dist.db'))}, maxAge: 0.2, sweepSignal: false });
    const id = await app.store.put(null, { from: 'dist' });
    await app.kill('store');
    const data = await app.store.get(id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const swept = await app.sweep();
    const status = app.status();
    await app.stop();
    console.log(JSON.stringify({ data, swept: swept.deleted, restarts: status.children.store.restarts, handler: typeof createHandler, config: new ConfigError('k', 'm').code }));
  `,
  );
  const result = await runScript(script, [], { timeoutMs: 30000 });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout), {
    data: { from: 'dist' },
    swept: 1,
    restarts: 1,
    handler: 'function',
    config: 'ERR_SESSION_CONFIG',
  });
});

// Two copies of the package in one process (an app's and a library's): each
// copy's errors are instances of the other's classes, by their Symbol.for
// brands, and a front door answers an error of the other copy by its class.
test('errors of one copy of the package are recognised by another copy', async () => {
  // The built copy from the test above (dist/ under `out`), beside the source.
  const other = (await import(pathToFileURL(join(out, 'dist', 'index.js')).href)) as typeof import('../src/index.ts');
  const mine = await import('../src/index.ts');
  assert.is.not(other.StoreUnavailableError, mine.StoreUnavailableError, 'two copies');
  const theirs = new other.StoreUnavailableError('from the other copy');
  assert.ok(theirs instanceof mine.StoreUnavailableError);
  assert.ok(theirs instanceof mine.SessionError);
  assert.ok(theirs instanceof Error);
  assert.not.ok(theirs instanceof mine.ConfigError);
  const config = new mine.ConfigError('maxAge', 'bad');
  assert.ok(config instanceof other.ConfigError && config instanceof other.SessionError);
  assert.not.ok(config instanceof other.StoreUnavailableError);
  assert.not.ok(new Error('plain') instanceof mine.SessionError);
  assert.not.ok({ code: 'ERR_SESSION_CONFIG' } instanceof mine.SessionError, 'a look-alike object is no SessionError');
  // A user's subclass without a code of its own is its parent's kind.
  class Mine extends mine.StoreUnavailableError {}
  assert.ok(new Mine('x') instanceof other.StoreUnavailableError);
  assert.is(new Mine('x').code, 'ERR_SESSION_STORE_UNAVAILABLE');
  assert.is(new Mine('x').name, 'StoreUnavailableError', "the parent's name, as before the registry");
  // ...but its own class is checked by prototype: its parent's errors are not Mine.
  assert.not.ok(new mine.StoreUnavailableError('x') instanceof Mine);
  assert.not.ok(new other.StoreUnavailableError('x') instanceof Mine);
  class AppError extends mine.SessionError {}
  assert.ok(new AppError('x') instanceof mine.SessionError && new AppError('x') instanceof AppError);
  assert.not.ok(new mine.ConfigError('k', 'm') instanceof AppError, 'a library error is no user subclass');
  // Names are literals of the registry, whatever a bundler calls the classes.
  assert.equal(
    [new other.ConfigError('k', 'm'), new other.StoreUnavailableError('x'), new other.AppStoppedError()].map((error) => error.name),
    ['ConfigError', 'StoreUnavailableError', 'AppStoppedError'],
  );

  const dir = join(out, 'errors-db');
  mkdirSync(dir, { recursive: true });
  const app = await mine.startSessionApp({ database: join(dir, 'errors.db'), sweepSignal: false });
  // A store (any SessionStore-shaped object) whose load fails with the other copy's error.
  const failing = {
    ...app.store,
    commit: undefined,
    get: () => Promise.reject(new other.StoreUnavailableError('the other copy says so')),
    patch: app.store.patch.bind(app.store),
  };
  const server = createServer(
    mine.createHandler(failing as typeof app.store, (_req, res) => {
      res.end('never');
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const id = await app.store.put(null, { n: 1 });
    const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: `sid=${id}` } });
    await response.arrayBuffer();
    assert.is(response.status, 503, "the other copy's StoreUnavailableError is answered 503, as this copy's is");
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await app.stop();
  }
});

test.run();
