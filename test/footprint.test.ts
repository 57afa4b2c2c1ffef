// What an app on SQLite loads: not the PostgreSQL driver (issue 16: memory).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.ts';

const root = new URL('..', import.meta.url);

test('an app on SQLite (its helpers, a sweep, a request) never loads pg on the main thread; a PostgreSQL URL does', () => {
  const temp = tempDir();
  try {
    const file = join(temp.dir, 'footprint.mts');
    writeFileSync(
      file,
      `
      import { createRequire } from 'node:module';
      import { createServer } from 'node:http';
      import { request } from ${JSON.stringify(import.meta.resolve('undici'))};
      import { createHandler, startSessionApp, setupStore, clearStore } from ${JSON.stringify(new URL('src/index.ts', root).href)};
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => /node_modules[\\\\/]pg[\\\\/]/.test(f)).length;
      const database = ${JSON.stringify(join(temp.dir, 'f.db'))};
      await setupStore({ database });
      const app = await startSessionApp({ database, sweepSignal: false });
      const server = createServer(createHandler(app.store, (req, res, session) => { session.set('n', 1); res.end('ok'); }));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const response = await request('http://127.0.0.1:' + server.address().port + '/');
      await response.body.text();
      await app.sweep();
      await clearStore({ database });
      const sqlite = loaded();
      server.close();
      await app.stop();
      // A PostgreSQL URL loads it (nothing listens there: the helper fails, after loading the driver).
      await setupStore({ database: 'postgres://nobody@127.0.0.1:1/none?connect_timeout=1' }).catch(() => {});
      console.log(JSON.stringify({ status: response.statusCode, sqlite, postgres: loaded() }));
    `,
    );
    const child = spawnSync(process.execPath, [...process.execArgv, file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.is(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { status: number; sqlite: number; postgres: number };
    assert.is(result.status, 200);
    assert.is(result.sqlite, 0, 'pg not loaded on SQLite');
    assert.ok(result.postgres > 0, 'the look can tell: a PostgreSQL URL loads pg');
  } finally {
    temp.remove();
  }
});

test.run();
