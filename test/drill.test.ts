// The bounded fault drill: the example server under load while the store
// owner and cleaner are killed, the server is SIGKILLed and restarted, the
// database is locked, and the supervisor is pushed past its intensity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers.ts';

test('nothing acknowledged is lost, no logout is undone, every fault recovers, giving up is loud', async () => {
  const script = fileURLToPath(new URL('../bench/drill.ts', import.meta.url));
  const result = await runScript(script, ['--quick', '--json'], { timeoutMs: 240_000 });
  assert.is(result.timedOut, false, 'the drill hung');
  assert.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
    acknowledgedWrites: number;
    acknowledgedWritesLost: number;
    resurrectedAfterLogout: number;
    loggedOut: number;
    unrecovered: number;
    faults: Array<{ name: string; recoveryMs: number | null }>;
    failed: Record<string, Record<string, number>>;
    supervisorGaveUp: { exitCode: number | null; exitedWithinMs: number; loud: boolean };
  };
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.ok(summary.loggedOut > 0, 'some clients logged out');
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  assert.ok(summary.faults.length >= 9);
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
  for (const name of ['store kill 1', 'cleaner kill 1', 'SIGUSR2 burst 1', 'write lock held 1.5 s']) {
    assert.equal(summary.failed[name] ?? {}, {}, `no request fails during "${name}"`);
  }
  assert.is(summary.supervisorGaveUp.exitCode, 1, 'past the intensity the server exits non-zero');
  assert.ok(summary.supervisorGaveUp.exitedWithinMs < 10_000, 'and does not hang');
  assert.ok(summary.supervisorGaveUp.loud, 'with 503s and a log line');
});

test.run();
