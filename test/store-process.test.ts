// The store across processes, crashes and load.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSessionApp } from '../src/index.ts';
import { runScript, tempDir, until } from './helpers.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

test('durability: writes acknowledged before a SIGKILL are all read by a new process', async () => {
  const temp = tempDir();
  try {
    const database = join(temp.dir, 'sessions.db');
    const result = await runScript(fixture('write-then-sigkill.ts'), [database, '200']);
    assert.is(result.signal, 'SIGKILL', result.stderr);
    const { ids, patched } = JSON.parse(result.stdout) as { ids: string[]; patched: boolean };
    assert.is(ids.length, 200);
    assert.is(patched, true);
    const app = await startSessionApp({ database, sweepSignal: false });
    try {
      assert.is(await app.store.count(), 200);
      for (const [i, id] of ids.entries()) {
        const data = await app.store.get(id);
        assert.is(data?.i, i);
      }
      assert.is((await app.store.get(ids[0]))?.patched, true);
    } finally {
      await app.stop();
    }
  } finally {
    temp.remove();
  }
});

test('crash transparency: 5 owner kills under 20 read-modify-write loops: no rejected call, no lost write', async () => {
  const temp = tempDir();
  const app = await startSessionApp({ database: join(temp.dir, 'sessions.db'), sweepSignal: false, restart: { intensity: 10, period: 5 } });
  try {
    const acknowledged = new Map<string, number>();
    let rejected = 0;
    let operations = 0;
    let running = true;
    const callers = Array.from({ length: 20 }, async (_, c) => {
      const id = (await app.store.put(null, { n: 0, caller: c }))!;
      acknowledged.set(id, 0);
      while (running) {
        try {
          const data = await app.store.get(id);
          const n = (data!.n as number) + 1;
          // Alternate put and patch: both are replayed safely across a crash.
          const ok = n % 2 ? await app.store.put(id, { n, caller: c }) : await app.store.patch(id, { set: { n } });
          assert.ok(ok, 'the write was applied');
          acknowledged.set(id, n);
          operations += 2;
        } catch (error) {
          rejected++;
          throw error;
        }
      }
    });
    for (let k = 0; k < 5; k++) {
      const target = operations + 400;
      await until(() => operations >= target, 20000, 'traffic');
      await until(() => app.status().children.store.state === 'running', 5000, 'owner running');
      await app.kill('store');
    }
    await until(() => app.status().children.store.state === 'running', 5000, 'owner running');
    const target = operations + 400;
    await until(() => operations >= target, 20000, 'traffic after the last kill');
    running = false;
    await Promise.all(callers);
    assert.is(rejected, 0);
    assert.is(app.status().children.store.restarts, 5);
    for (const [id, n] of acknowledged) assert.is((await app.store.get(id))?.n, n, 'every acknowledged write is present');
    assert.ok(operations > 2000, `${operations} operations`);
  } finally {
    await app.stop();
    temp.remove();
  }
});

/** Runs the idle-app fixture in `mode` and checks that its process exited by itself; returns its stdout. */
async function runIdleApp(mode: 'idle' | 'pending'): Promise<string> {
  const temp = tempDir();
  try {
    const result = await runScript(fixture('idle-app.ts'), [join(temp.dir, 's.db'), mode], { timeoutMs: 15000 });
    assert.is(result.timedOut, false, 'the process hung');
    assert.is(result.code, 0, result.stderr);
    return result.stdout;
  } finally {
    temp.remove();
  }
}

test('an idle app does not keep the process alive (no stop() called)', async () => {
  assert.match(await runIdleApp('idle'), /idle: end of script/);
});

test('a pending store call keeps the process alive until it settles', async () => {
  assert.match(await runIdleApp('pending'), /pending: end of script\npending call settled: 43/);
});

test.run();
