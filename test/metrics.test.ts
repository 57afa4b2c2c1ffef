// app.metrics() (docs/operating.md): the Prometheus text format, read
// back with a real parser of that format, checked against the calls made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import parsePrometheus from 'parse-prometheus-text-format';
import { Metrics } from '../src/metrics.ts';
import { DatabaseSync } from 'node:sqlite';
import { elapse, withApp, sleep } from './helpers.ts';
import { sqliteOnly, storeLocation } from './engines.ts';

type Families = ReturnType<typeof parsePrometheus>;
const family = (families: Families, name: string) => {
  const found = families.find((f) => f.name === `supervised_sessions_${name}`);
  if (!found) throw new Error(`no family ${name}: ${families.map((f) => f.name).join(', ')}`);
  return found;
};
const value = (families: Families, name: string, labels: Record<string, string> = {}) => {
  const sample = family(families, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample ? Number(sample.value) : undefined;
};

test('store calls counted by op and outcome, their durations as a histogram, HELP and TYPE for every family', () =>
  withApp({ maxSessionBytes: 300 }, async (app) => {
    const ids = await Promise.all([1, 2, 3].map((n) => app.store.put(null, { n })));
    await app.store.get(ids[0]!);
    await app.store.get(ids[1]!);
    await app.store.patch(ids[0]!, { set: { big: 'x'.repeat(400) } }).catch(() => {});
    assert.is(await app.store.count(), 3);
    const families = parsePrometheus(app.metrics());
    for (const f of families) {
      assert.ok(f.help.length > 0, `${f.name} has a HELP`);
      assert.ok(['counter', 'gauge', 'histogram'].includes(f.type.toLowerCase()), `${f.name}: ${f.type}`);
    }
    assert.is(value(families, 'up'), 1);
    assert.is(value(families, 'store_calls_total', { op: 'create', outcome: 'ok' }), 3);
    assert.is(value(families, 'store_calls_total', { op: 'get', outcome: 'ok' }), 2);
    assert.is(value(families, 'store_calls_total', { op: 'patch', outcome: 'ERR_SESSION_TOO_LARGE' }), 1);
    assert.is(value(families, 'live_sessions'), 3);
    assert.is(value(families, 'mailbox_pending'), 0);
    // (This parser flattens labelled histograms into one: their series are read from the text.)
    const text = app.metrics();
    const line = (suffix: string) => Number(new RegExp(`^supervised_sessions_store_call_seconds_${suffix} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.is(line('count\\{op="get"\\}'), 2);
    assert.ok(line('sum\\{op="get"\\}') > 0);
    // Cumulative buckets, ending at +Inf with the count.
    const buckets = [...text.matchAll(/^supervised_sessions_store_call_seconds_bucket\{op="get",le="([^"]+)"\} (\d+)$/gm)].map(
      (m) => [m[1], Number(m[2])] as const,
    );
    assert.is(buckets.length, 16);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'buckets never decrease');
    assert.equal(buckets[buckets.length - 1], ['+Inf', 2]);
    await app.stop();
    assert.is(value(parsePrometheus(app.metrics()), 'up'), 0);
  }));

test('group commit made visible: 64 concurrent writes are answered in fewer transactions than calls', () =>
  withApp({}, async (app) => {
    await Promise.all(Array.from({ length: 64 }, (_, n) => app.store.put(null, { n })));
    const batches = family(parsePrometheus(app.metrics()), 'batch_calls').metrics[0];
    assert.is(Number(batches.sum), 64);
    assert.ok(Number(batches.count) < 64 / 2, `64 calls in ${batches.count} transactions`);
  }));

test("a restart counted after kill('store'), a sweep after SIGUSR2; counters survive the child's restart", () =>
  withApp({ sweepSignal: 'SIGUSR2', cleanerInterval: 3600 }, async (app) => {
    await app.store.put(null, { a: 1 });
    await app.kill('store');
    await app.store.put(null, { b: 2 });
    const swept = new Promise((resolve) => app.once('sweep', resolve));
    process.kill(process.pid, 'SIGUSR2');
    await swept;
    await sleep(10);
    const families = parsePrometheus(app.metrics());
    assert.is(value(families, 'restarts_total', { child: 'store' }), 1);
    assert.is(value(families, 'sweeps_total', { trigger: 'signal' }), 1);
    assert.is(value(families, 'swept_sessions_total'), 0);
    assert.is(Number(family(families, 'sweep_seconds').metrics[0].count), 1);
    assert.is(value(families, 'store_calls_total', { op: 'create', outcome: 'ok' }), 2, 'counted across the restart');
    // live_sessions as of that sweep, with no count() made: the cleaner counted.
    assert.is(value(families, 'live_sessions'), 2);
    assert.not.match(app.metrics(), /op="count"/, 'no store call counted them');
  }));

test('live_sessions as of the last sweep: dead sessions swept are no longer counted', () =>
  withApp({ maxAge: 1, cleanerInterval: 3600 }, async (app) => {
    await Promise.all([1, 2, 3].map((n) => app.store.put(null, { n })));
    assert.not.match(app.metrics(), /^supervised_sessions_live_sessions /m, 'no figure before a sweep or count()');
    await elapse(app, 1100);
    const fresh = await app.store.put(null, { fresh: true });
    const report = await app.sweep();
    assert.equal({ deleted: report.deleted, live: report.live }, { deleted: 3, live: 1 });
    const families = parsePrometheus(app.metrics());
    assert.is(value(families, 'live_sessions'), 1);
    assert.is(value(families, 'swept_sessions_total'), 3);
    assert.ok(await app.store.get(fresh!));
  }));

test('every series an alert rule reads exists from the start, at 0', () =>
  withApp({}, async (app) => {
    const families = parsePrometheus(app.metrics());
    assert.is(value(families, 'restarts_total', { child: 'store' }), 0);
    assert.is(value(families, 'restarts_total', { child: 'cleaner' }), 0);
    for (const trigger of ['timer', 'signal', 'manual']) assert.is(value(families, 'sweeps_total', { trigger }), 0, trigger);
    assert.is(value(families, 'sweep_errors_total'), 0);
    assert.is(value(families, 'swept_sessions_total'), 0);
  }));

test('calls refused at once are counted by their code, without a duration; the others are timed', () =>
  withApp({ maxPendingCalls: 2 }, async (app) => {
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, n) => app.store.put(null, { n })));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.length - ok;
    assert.ok(refused > 0 && ok > 0, `${ok} stored, ${refused} refused`);
    const text = app.metrics();
    assert.match(text, new RegExp(`^supervised_sessions_store_calls_total\\{op="create",outcome="ok"\\} ${ok}$`, 'm'));
    assert.match(
      text,
      new RegExp(`^supervised_sessions_store_calls_total\\{op="create",outcome="ERR_SESSION_STORE_UNAVAILABLE"\\} ${refused}$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^supervised_sessions_store_call_seconds_count\\{op="create"\\} ${ok}$`, 'm'),
      'refused calls never waited: no duration',
    );
  }));

sqliteOnly('a failed sweep is counted in sweep_errors_total, not in sweeps_total', () =>
  withApp({}, async (app, dir) => {
    const { database } = await storeLocation(dir);
    const db = new DatabaseSync(database);
    db.exec('PRAGMA busy_timeout = 5000; ALTER TABLE session RENAME TO parked');
    const failed = await app.sweep().catch((e: unknown) => e);
    db.exec('ALTER TABLE parked RENAME TO session');
    db.close();
    assert.instance(failed, Error);
    const families = parsePrometheus(app.metrics());
    assert.is(value(families, 'sweep_errors_total'), 1);
    assert.is(value(families, 'sweeps_total', { trigger: 'manual' }), 0);
    await app.sweep();
    assert.is(value(parsePrometheus(app.metrics()), 'sweeps_total', { trigger: 'manual' }), 1);
  }),
);

test('live_sessions carries when it was counted', () =>
  withApp({}, async (app) => {
    await app.store.put(null, { a: 1 });
    const before = Date.now() / 1000;
    await app.store.count();
    const families = parsePrometheus(app.metrics());
    const at = value(families, 'live_sessions_timestamp_seconds')!;
    assert.ok(at >= before - 0.001 && at <= Date.now() / 1000, `${at} within [${before}, now]`);
  }));

test('a store error without a code is counted under its name', () => {
  const metrics = new Metrics();
  metrics.call('get', performance.now(), new TypeError('bad'));
  assert.match(metrics.render({ up: true, pending: 0 }), /^supervised_sessions_store_calls_total\{op="get",outcome="TypeError"\} 1$/m);
});

test('label values are escaped as the format requires', () => {
  const metrics = new Metrics();
  metrics.restarts.inc(['a"b\\c\nd']);
  const families = parsePrometheus(metrics.render({ up: true, pending: 0 }));
  const children = family(families, 'restarts_total').metrics.map((m) => m.labels?.child);
  assert.ok(children.includes('a"b\\c\nd'), JSON.stringify(children));
});

// A sweep set off by a signal does not keep an idle process alive (an idle
// app never does); this suite waits for one, so it keeps itself alive.
const keepAlive = setInterval(() => {}, 1000);
test.after(() => clearInterval(keepAlive));
test.run();
