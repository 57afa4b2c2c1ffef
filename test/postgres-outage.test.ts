// The PostgreSQL server goes away under a running app: a server of this
// suite's own (the shared one must stay up for the other suites), stopped,
// crashed and started again while calls are in flight.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { createHandler, startSessionApp, StoreUnavailableError, type SessionApp } from '../src/index.ts';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { sleep } from './helpers.ts';

let server: PostgresServer;
let tables = 0;

test.before(async () => {
  server = await startPostgres();
});

test.after(() => {
  server.destroy();
});

async function withApp(config: { requestTimeout?: number }, body: (app: SessionApp) => Promise<void>): Promise<void> {
  const app = await startSessionApp({
    database: server.url,
    table: `outage${++tables}`,
    sweepSignal: false,
    cleanerInterval: 3600,
    ...config,
  });
  try {
    await body(app);
  } finally {
    // The server is up again whatever the test did.
    if (!(await isUp())) await server.startAsync();
    await app.stop();
  }
}

async function isUp(): Promise<boolean> {
  const { existsSync } = await import('node:fs');
  return existsSync(`${server.dir}/data/postmaster.pid`);
}

test('the server down past requestTimeout: calls fail with StoreUnavailableError (a 503 through createHandler, password-free); back up, calls succeed, no restart', () =>
  withApp({ requestTimeout: 700 }, async (app) => {
    const id = (await app.store.put(null, { a: 1 }))!;
    const http = createServer(
      createHandler(
        app.store,
        (_req, res, session) => {
          session.set('b', 2);
          res.end('stored');
        },
        { onError: () => {} },
      ),
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      await server.stopAsync('fast');
      const started = Date.now();
      const error = await app.store.get(id).catch((e: unknown) => e);
      assert.instance(error, StoreUnavailableError);
      assert.ok(Date.now() - started < 3000, `failed within about requestTimeout: ${Date.now() - started} ms`);
      const response = await request(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`);
      assert.is(response.statusCode, 503);
      await response.body.text();
      await server.startAsync();
      assert.equal(await app.store.get(id), { a: 1 });
      assert.ok(await app.store.patch(id, { set: { c: 3 } }));
      assert.is(app.status().children.store.restarts, 0);
      assert.is(app.status().state, 'running');
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  }));

test('calls made while the server restarts wait and succeed within requestTimeout; a store actor restarted meanwhile starts anyway', () =>
  withApp({ requestTimeout: 8000 }, async (app) => {
    const id = (await app.store.put(null, { n: 0 }))!;
    await server.stopAsync('fast');
    // The store actor crashes while the server is away: its next incarnation must start without it.
    await app.kill('store');
    const waiting = Promise.all(Array.from({ length: 20 }, (_, n) => app.store.patch(id, { set: { [`k${n}`]: n } })));
    // Restarted while the server is still down (how soon depends on the machine's load: polled).
    for (const deadline = Date.now() + 5000; app.status().children.store.state !== 'running' && Date.now() < deadline; ) await sleep(50);
    assert.is(app.status().children.store.state, 'running', 'restarted although the server is down');
    await server.startAsync();
    assert.equal(await waiting, new Array(20).fill(true));
    const data = await app.store.get(id);
    assert.is(Object.keys(data!).length, 21);
    assert.is(app.status().children.store.restarts, 1);
  }));

test('a crash of the server (-m immediate) under writes: every acknowledged write is there after recovery; nothing deleted comes back', () =>
  withApp({ requestTimeout: 10_000 }, async (app) => {
    const ids = await Promise.all(Array.from({ length: 40 }, (_, n) => app.store.put(null, { n, v: 0 })));
    const deleted = ids.slice(0, 10);
    const kept = ids.slice(10);
    await Promise.all(deleted.map((id) => app.store.delete(id!)));
    const acked = new Map<string, number>();
    let running = true;
    const loops = kept.map(async (id) => {
      for (let v = 1; running && v < 10_000; v++) {
        try {
          if (await app.store.patch(id!, { set: { v } })) acked.set(id!, v);
        } catch {
          await sleep(10);
        }
      }
    });
    await sleep(300);
    await server.stopAsync('immediate');
    await sleep(200);
    await server.startAsync();
    await sleep(300);
    running = false;
    await Promise.all(loops);
    for (const id of kept) {
      const data = (await app.store.get(id!)) as { v: number };
      assert.ok(data.v >= (acked.get(id!) ?? 0), `acknowledged ${acked.get(id!)}, stored ${data.v}`);
    }
    for (const id of deleted) assert.is(await app.store.get(id!), null);
    assert.ok(
      [...acked.values()].every((v) => v > 1),
      'writes went on before and after the crash',
    );
  }));

test('a sweep while the server is down fails (sweepError), and the next one sweeps', () =>
  withApp({ requestTimeout: 1000 }, async (app) => {
    await app.store.put(null, { a: 1 });
    const errors: Error[] = [];
    app.on('sweepError', (error: Error) => errors.push(error));
    await server.stopAsync('fast');
    const failed = await app.sweep().catch((e: unknown) => e);
    assert.instance(failed, StoreUnavailableError);
    await server.startAsync();
    const report = await app.sweep();
    assert.is(report.skipped, false);
    assert.is(report.deleted, 0);
    assert.is(app.status().state, 'running');
    assert.ok(errors.length >= 1);
  }));

test.run();
