// The bounded fault drill on Redis (npm run drill -- --engine redis --quick):
// the example server under load on a redis-server the drill starts (AOF,
// appendfsync always), while our connections are killed and Redis is
// SIGKILLed and restarted from its AOF, besides the store, cleaner and
// whole-process kills of the SQLite drill; then on a Redis Cluster (--cluster,
// waitReplicas=1), where slots move under load and a primary is SIGKILLed so
// that its replica takes over.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers.ts';

/** The bounded drill with these arguments: it ran to its end; its summary. */
async function drill(args: string[], timeoutMs: number) {
  const script = fileURLToPath(new URL('../bench/drill.ts', import.meta.url));
  const result = await runScript(script, ['--quick', '--json', '--engine', 'redis', ...args], { timeoutMs });
  assert.is(result.timedOut, false, 'the drill hung');
  assert.is(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as {
    acknowledgedWrites: number;
    acknowledgedWritesLost: number;
    resurrectedAfterLogout: number;
    unrecovered: number;
    faults: Array<{ name: string; recoveryMs: number | null }>;
    failed: Record<string, Record<string, number>>;
  };
}

test('Redis: nothing acknowledged is lost, no logout undone, Redis crashing and restarting costs no request a 5xx', async () => {
  const summary = await drill([], 240_000);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  const names = summary.faults.map((f) => f.name);
  for (const name of ['CLIENT KILL of our connections 1', 'Redis SIGKILL, restarted 1']) {
    assert.ok(names.includes(name), `the drill ran "${name}"`);
    // Within requestTimeout, a lost connection is waited out: no 503.
    assert.equal(summary.failed[name] ?? {}, {}, `no request fails during "${name}"`);
  }
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
});

test('Redis Cluster, waitReplicas=1: slots moving and a failover lose nothing acknowledged and undo no logout; only the failover may answer 503', async () => {
  const summary = await drill(['--cluster'], 300_000);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  const names = summary.faults.map((f) => f.name);
  for (const name of ['CLIENT KILL of our connections on every node 1', '500 slots moved under load (reshard)']) {
    assert.ok(names.includes(name), `the drill ran "${name}"`);
    assert.equal(summary.failed[name] ?? {}, {}, `no request fails during "${name}"`);
  }
  const failover = 'primary SIGKILL, replica promoted 1';
  assert.ok(names.includes(failover));
  // Until the old primary is back as a replica, WAIT 1 cannot be met for its slots: those writes are refused, never acknowledged.
  for (const kind of Object.keys(summary.failed[failover] ?? {})) assert.is(kind, '503', `"${failover}" fails requests only with 503`);
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
});

test.run();
