// The bounded fault drill on PostgreSQL (npm run drill -- --engine postgres
// --quick): the example server under load on a server the drill starts,
// while our backends are terminated, the server restarts (-m fast) and
// crashes (-m immediate) and comes back, besides the store, cleaner and
// whole-process kills of the SQLite drill.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers.ts';

test('PostgreSQL: nothing acknowledged is lost, no logout undone, the server restarting or crashing costs no request a 5xx', async () => {
  const summary = await drill([]);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  const names = summary.faults.map((f) => f.name);
  for (const name of ['pg_terminate_backend 1', 'server restart -m fast 1', 'server crash -m immediate, restarted 1']) {
    assert.ok(names.includes(name), `the drill ran "${name}"`);
    // Within requestTimeout, a lost connection is waited out: no 503.
    assert.equal(summary.failed[name] ?? {}, {}, `no request fails during "${name}"`);
  }
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
});

/** The drill's JSON summary for these arguments (a bounded run). */
async function drill(args: string[]) {
  const script = fileURLToPath(new URL('../bench/drill.ts', import.meta.url));
  const result = await runScript(script, ['--quick', '--json', '--engine', 'postgres', ...args], { timeoutMs: 240_000 });
  assert.is(result.timedOut, false, 'the drill hung');
  assert.is(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as {
    acknowledgedWrites: number;
    acknowledgedWritesLost: number;
    failedBeforeRequestTimeout: number;
    loggedOut: number;
    resurrectedAfterLogout: number;
    unrecovered: number;
    faults: Array<{ name: string; recoveryMs: number | null }>;
    failed: Record<string, Record<string, number>>;
  };
}

test('PostgreSQL failover (sync standby, two-host URL): the primary SIGKILLed and the standby promoted under load loses nothing acknowledged, brings no logout back, fails no request before requestTimeout; the old primary back as a standby first in the list is skipped', async () => {
  const summary = await drill(['--ha', 'sync']);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  assert.is(summary.failedBeforeRequestTimeout, 0, JSON.stringify(summary.failed));
  const names = summary.faults.map((f) => f.name);
  for (const name of [
    'pg_terminate_backend on the primary 1',
    'failover 1: primary SIGKILLed, sync standby promoted',
    'old primary back as a standby, first in the host list 1',
  ])
    assert.ok(names.includes(name), `the drill ran "${name}"`);
  assert.equal(summary.failed['old primary back as a standby, first in the host list 1'] ?? {}, {}, 'the standby is skipped');
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
});

test('PostgreSQL failover to an asynchronous standby under load: the engine recovers as with a synchronous one (no request failing before requestTimeout); what PostgreSQL itself lost is counted and printed, not hidden', async () => {
  const summary = await drill(['--ha', 'async']);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  assert.is(summary.failedBeforeRequestTimeout, 0, JSON.stringify(summary.failed));
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
  // Asynchronous replication: the acknowledged writes the old primary had not yet sent are lost by PostgreSQL.
  console.log(
    `  async failover: ${summary.acknowledgedWritesLost} of ${summary.acknowledgedWrites} acknowledged writes lost by PostgreSQL, ${summary.resurrectedAfterLogout} logouts undone`,
  );
});

test('PostgreSQL through PgBouncer (transaction pooling, ?pgbouncer=true): server connections terminated, the server restarted, PgBouncer itself killed and restarted: nothing acknowledged lost, no logout undone', async () => {
  const summary = await drill(['--pgbouncer']);
  assert.ok(summary.acknowledgedWrites > 1000, `${summary.acknowledgedWrites} acknowledged writes`);
  assert.is(summary.acknowledgedWritesLost, 0);
  assert.is(summary.resurrectedAfterLogout, 0);
  assert.is(summary.unrecovered, 0, JSON.stringify(summary.faults));
  assert.is(summary.failedBeforeRequestTimeout, 0, JSON.stringify(summary.failed));
  assert.equal(summary.failed['steady load'] ?? {}, {}, 'no request fails outside a fault');
});

test.run();
