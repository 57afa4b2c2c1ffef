// The cleaner: sweeps on a timer, on a signal, on demand; supervised; never half-deletes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { startSessionApp, setupStore, type SessionApp, type SweepReport, type SessionAppConfig } from '../src/index.ts';
import { elapse, runScript, sleep, startClocked, tempDir, until } from './helpers.ts';

/** Inserts `n` rows last touched and created `ageMs` ago, straight into the file. */
function plant(database: string, n: number, ageMs: number, table = 'session'): void {
  const db = new DatabaseSync(database);
  db.exec('PRAGMA busy_timeout = 10000');
  const at = Date.now() - ageMs;
  db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO "${table}" (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{"planted":true}', ?, ? FROM c`).run(n, at, at);
  db.close();
}

function rows(database: string): number {
  const db = new DatabaseSync(database);
  const n = Number(db.prepare('SELECT count(*) AS n FROM session').get()!.n);
  db.close();
  return n;
}

async function withApp(config: SessionAppConfig, body: (app: SessionApp, database: string) => Promise<void>): Promise<void> {
  const temp = tempDir();
  const database = join(temp.dir, 'sessions.db');
  const app = await startClocked({ database, sweepSignal: false, cleanerInterval: 3600, ...config });
  try {
    await body(app, database);
  } finally {
    await app.stop();
    temp.remove();
  }
}

for (const [name, config] of [
  ['relative', { maxAge: 0.5, timestamp: 'relative' }],
  ['fixed', { maxAge: 0.5, timestamp: 'fixed' }],
  ['maxLifetime', { maxAge: 60, maxLifetime: 0.5, touchAfter: 0 }],
] as const) {
  test(`a sweep deletes every dead session and no live one (${name})`, () =>
    withApp(config, async (app, database) => {
      const old = await Promise.all(Array.from({ length: 30 }, (_, i) => app.store.put(null, { old: i })));
      await elapse(app, 350);
      // For 'fixed' and maxLifetime, activity does not save the old ones.
      if (name !== 'relative') for (const id of old) await app.store.get(id!);
      await elapse(app, 300);
      const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => app.store.put(null, { fresh: i })));
      const report = await app.sweep();
      assert.is(report.deleted, 30);
      assert.is(report.trigger, 'manual');
      assert.type(report.durationMs, 'number');
      assert.is(rows(database), 20);
      for (const id of fresh) assert.ok(await app.store.get(id!));
      assert.is(await app.store.count(), 20);
    }));
}

test('cleanerInterval 1: it sweeps on its own, reported with trigger "timer"', () =>
  withApp({ cleanerInterval: 1, maxAge: 0.2 }, async (app) => {
    const reports: SweepReport[] = [];
    app.on('sweep', (report) => reports.push(report));
    await app.store.put(null, { a: 1 });
    await until(() => reports.some((report) => report.deleted === 1), 5000, 'a timer sweep that deletes the session');
    assert.ok(reports.every((report) => report.trigger === 'timer'));
  }));

test('the sweep signal triggers a sweep reported with trigger "signal"; stop() removes the handler', async () => {
  const before = process.listenerCount('SIGUSR2');
  const temp = tempDir();
  const app = await startSessionApp({ database: join(temp.dir, 's.db'), cleanerInterval: 3600, maxAge: 0.2 });
  try {
    assert.is(process.listenerCount('SIGUSR2'), before + 1);
    const reports: SweepReport[] = [];
    app.on('sweep', (report) => reports.push(report));
    await app.store.put(null, { a: 1 });
    await sleep(300);
    process.kill(process.pid, 'SIGUSR2');
    await until(() => reports.length === 1, 5000, 'the signal sweep');
    assert.equal({ deleted: reports[0].deleted, trigger: reports[0].trigger }, { deleted: 1, trigger: 'signal' });
  } finally {
    await app.stop();
    temp.remove();
  }
  assert.is(process.listenerCount('SIGUSR2'), before, 'the handler is gone after stop()');
});

test('sweepSignal false installs no handler; another signal name is honoured', async () => {
  const temp = tempDir();
  const before = { usr2: process.listenerCount('SIGUSR2'), usr1: process.listenerCount('SIGUSR1') };
  const quiet = await startSessionApp({ database: join(temp.dir, 'a.db'), sweepSignal: false });
  assert.is(process.listenerCount('SIGUSR2'), before.usr2);
  await quiet.stop();
  const custom = await startSessionApp({ database: join(temp.dir, 'b.db'), sweepSignal: 'SIGUSR1' });
  assert.is(process.listenerCount('SIGUSR1'), before.usr1 + 1);
  assert.is(process.listenerCount('SIGUSR2'), before.usr2);
  await custom.stop();
  assert.is(process.listenerCount('SIGUSR1'), before.usr1);
  temp.remove();
});

test('triggers during a long sweep coalesce into exactly one follow-up sweep', () =>
  withApp({ maxAge: 30, sweepSignal: 'SIGUSR2' }, async (app, database) => {
    plant(database, 60_000, 60_000);
    const reports: SweepReport[] = [];
    app.on('sweep', (report) => reports.push(report));
    const first = app.sweep();
    await sleep(100);
    assert.is(reports.length, 0, 'the first sweep is still running');
    process.kill(process.pid, 'SIGUSR2');
    process.kill(process.pid, 'SIGUSR2');
    const followUp = app.sweep();
    const [a, b] = await Promise.all([first, followUp]);
    await sleep(300);
    assert.is(reports.length, 2, `sweeps: ${JSON.stringify(reports)}`);
    assert.is(a.deleted, 60_000);
    assert.is(b.deleted, 0);
    assert.is(b.trigger, 'manual', 'the follow-up answers the waiting manual caller');
    assert.is(rows(database), 0);
  }));

test('kill("cleaner") during a long sweep: whole batches only, a restart, the next sweep finishes', () =>
  withApp({ maxAge: 30, restart: { intensity: 5, period: 5 } }, async (app, database) => {
    const live = await Promise.all(Array.from({ length: 50 }, (_, i) => app.store.put(null, { live: i })));
    plant(database, 60_000, 60_000);
    const restarts: string[] = [];
    const errors: Error[] = [];
    app.on('restart', (event) => restarts.push(event.child));
    app.on('sweepError', (error) => errors.push(error));
    const before = app.status().children.cleaner.threadId;
    const sweeping = app.sweep().catch((e: unknown) => e);
    await sleep(300);
    await app.kill('cleaner');
    assert.instance(await sweeping, Error, 'the interrupted sweep reports its failure');
    assert.is(errors.length, 1);
    await until(() => app.status().children.cleaner.state === 'running', 5000, 'the cleaner restarted');
    assert.equal(restarts, ['cleaner']);
    assert.is(app.status().children.cleaner.restarts, 1);
    assert.is.not(app.status().children.cleaner.threadId, before);
    assert.is(app.status().children.store.restarts, 0, 'one_for_one: the store actor was not touched');
    const remaining = rows(database) - 50;
    assert.ok(remaining > 0 && remaining < 60_000, `a part was swept before the kill (${remaining} left)`);
    const db = new DatabaseSync(database);
    assert.is(db.prepare('PRAGMA integrity_check').get()!.integrity_check, 'ok');
    db.close();
    const next = await app.sweep();
    assert.is(next.deleted, remaining, 'the next sweep deletes exactly what was left');
    assert.is(rows(database), 50);
    for (const id of live) assert.ok(await app.store.get(id!));
  }));

test('a sweep that fails with a database error is reported and retried at the next trigger', () =>
  withApp({ maxAge: 0.2 }, async (app, database) => {
    const errors: Error[] = [];
    app.on('sweepError', (error) => errors.push(error));
    const db = new DatabaseSync(database);
    db.exec('PRAGMA busy_timeout = 5000; ALTER TABLE session RENAME TO parked');
    const failed = await app.sweep().catch((e: unknown) => e);
    assert.instance(failed, Error);
    assert.match((failed as Error).message, /no such table/);
    assert.is(errors.length, 1);
    assert.is(app.status().children.cleaner.state, 'running', 'a database error is not a crash');
    db.exec('ALTER TABLE parked RENAME TO session');
    db.close();
    await app.store.put(null, { a: 1 });
    await elapse(app, 300);
    assert.is((await app.sweep()).deleted, 1);
  }));

test('two processes share one file, both writing and sweeping: no request fails', async () => {
  const temp = tempDir();
  try {
    const database = join(temp.dir, 'shared.db');
    const script = fileURLToPath(new URL('./fixtures/shared-writer.ts', import.meta.url));
    await setupStore({ database });
    const [a, b] = await Promise.all([
      runScript(script, [database, 'a'], { timeoutMs: 60000 }),
      runScript(script, [database, 'b'], { timeoutMs: 60000 }),
    ]);
    let deleted = 0;
    for (const result of [a, b]) {
      assert.is(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
        ok: number;
        failed: number;
        sweeps: number;
        deleted: number;
        errors: string[];
      };
      assert.is(summary.failed, 0, summary.errors.join('; '));
      assert.ok(summary.ok >= 500, `${summary.ok} requests`);
      assert.ok(summary.sweeps >= 3, `${summary.sweeps} sweeps`);
      deleted += summary.deleted;
    }
    assert.ok(deleted > 0, 'the sweeps deleted sessions that died while both processes wrote');
  } finally {
    temp.remove();
  }
});

test('stop() during a sweep: the process exits by itself', async () => {
  const temp = tempDir();
  try {
    const database = join(temp.dir, 'stop.db');
    const script = fileURLToPath(new URL('./fixtures/stop-during-sweep.ts', import.meta.url));
    const result = await runScript(script, [database], { timeoutMs: 30000 });
    assert.is(result.timedOut, false, `the process hung: ${result.stdout} ${result.stderr}`);
    assert.is(result.code, 0, result.stderr);
    assert.match(result.stdout, /stopped during a sweep/);
  } finally {
    temp.remove();
  }
});

test.run();
