// The published form: `npm run build` emits dist/ (JS + .d.ts), and the
// package runs from it, worker entry files included (.js, not .ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the checkout (git-ignored), so that dist/ resolves node_modules.
const out = join(root, '.tmp', `build-test-${process.pid}`);

test.after(() => rmSync(out, { recursive: true, force: true }));

test('the build emits JS and declarations, and the built package runs with its workers', async () => {
  mkdirSync(out, { recursive: true });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { encoding: 'utf8' });
  assert.is(build.status, 0, build.stdout + build.stderr);
  for (const file of ['index.js', 'index.d.ts', 'engines/sqlite/store-worker.js', 'engines/postgres/store-worker.js', 'cleaner/sweep-task.js', 'cli.js']) {
    assert.ok(existsSync(join(out, 'dist', file)), `dist/${file}`);
  }
  const script = join(out, 'use-dist.mjs');
  writeFileSync(script, `
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
  `);
  const result = await runScript(script, [], { timeoutMs: 30000 });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout), { data: { from: 'dist' }, swept: 1, restarts: 1, handler: 'function', config: 'ERR_SESSION_CONFIG' });
});

test.run();
