// The app's figures through OpenTelemetry (docs/operating.md): the real
// metrics SDK registered as the global MeterProvider, with its in-memory
// exporter; and, without a provider, nothing of OpenTelemetry loaded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { TIME_BUCKETS } from '../src/metrics.ts';
import { startSessionApp } from '../src/index.ts';
import { withApp, sleep, tempDir } from './helpers.ts';

const root = new URL('..', import.meta.url);
const version = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version;

test('without a MeterProvider registered, the app loads nothing of OpenTelemetry (a child process with the package installed)', () => {
  const temp = tempDir();
  try {
    // The child starts an app, works it, then registers a provider and starts
    // a second app: the first look must find nothing loaded, the second must
    // find the API (so the look can tell).
    const script = `
      import { createRequire } from 'node:module';
      import { startSessionApp } from './src/index.ts';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@opentelemetry')).length;
      const app = await startSessionApp({ database: ${JSON.stringify(`${temp.dir}/a.db`)}, sweepSignal: false });
      const id = await app.store.put(null, { a: 1 });
      await app.store.get(id);
      await app.sweep();
      app.metrics();
      const before = loaded();
      await app.stop();
      const api = await import('@opentelemetry/api');
      const sdk = await import('@opentelemetry/sdk-metrics');
      api.metrics.setGlobalMeterProvider(new sdk.MeterProvider());
      const second = await startSessionApp({ database: ${JSON.stringify(`${temp.dir}/b.db`)}, sweepSignal: false });
      const after = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@opentelemetry/api')).length;
      await second.stop();
      console.log(JSON.stringify({ before, after }));
    `;
    const file = join(temp.dir, 'no-provider.mts');
    writeFileSync(
      file,
      script
        .replace("'./src/index.ts'", JSON.stringify(new URL('src/index.ts', root).href))
        .replace("'@opentelemetry/api'", JSON.stringify(import.meta.resolve('@opentelemetry/api')))
        .replace("'@opentelemetry/sdk-metrics'", JSON.stringify(import.meta.resolve('@opentelemetry/sdk-metrics'))),
    );
    const child = spawnSync(process.execPath, [...process.execArgv, file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.is(child.status, 0, child.stderr);
    const { before, after } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { before: number; after: number };
    assert.is(before, 0, 'no @opentelemetry module loaded without a provider');
    assert.ok(after > 0, 'the API is loaded once a provider is registered');
  } finally {
    temp.remove();
  }
});

// One provider for the rest of this file, read through the SDK's in-memory exporter.
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
// A delta reader sees only what was observed since its last collection.
const deltaExporter = new InMemoryMetricExporter(AggregationTemporality.DELTA);
const deltaReader = new PeriodicExportingMetricReader({ exporter: deltaExporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({ readers: [reader, deltaReader] });
metrics.setGlobalMeterProvider(provider);

async function collect(): Promise<Map<string, MetricData>> {
  exporter.reset();
  await reader.forceFlush();
  const found = new Map<string, MetricData>();
  for (const resource of exporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      if (scope.scope.name !== 'supervised-sessions') continue;
      assert.is(scope.scope.version, version, 'the meter carries the package version');
      for (const metric of scope.metrics) found.set(metric.descriptor.name, metric);
    }
  }
  return found;
}
const point = (all: Map<string, MetricData>, name: string, attributes: Record<string, string> = {}) => {
  const metric = all.get(`supervised_sessions_${name}`);
  if (!metric) throw new Error(`no ${name}: ${[...all.keys()].join(', ')}`);
  return metric.dataPoints.find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
};
const histogram = (all: Map<string, MetricData>, name: string, attributes: Record<string, string> = {}) => {
  const metric = all.get(`supervised_sessions_${name}`)!;
  assert.is(metric.dataPointType, DataPointType.HISTOGRAM, `${name} is a histogram`);
  return point(all, name, attributes)!.value as { count: number; sum: number; buckets: { boundaries: number[]; counts: number[] } };
};

test('the same instruments through the SDK: calls by op and outcome, durations, group commit, restarts, sweeps, live sessions', () =>
  withApp({ maxSessionBytes: 300, sweepSignal: 'SIGUSR2', cleanerInterval: 3600 }, async (app) => {
    const ids = await Promise.all(Array.from({ length: 32 }, (_, n) => app.store.put(null, { n })));
    await app.store.get(ids[0]!);
    await app.store.get(ids[1]!);
    await app.store.patch(ids[0]!, { set: { big: 'x'.repeat(400) } }).catch(() => {});
    await app.kill('store');
    await app.store.get(ids[2]!);
    const swept = new Promise((resolve) => app.once('sweep', resolve));
    process.kill(process.pid, 'SIGUSR2');
    await swept;
    await sleep(10);

    const all = await collect();
    assert.is(point(all, 'up')!.value, 1);
    assert.is(point(all, 'mailbox_pending')!.value, 0);
    assert.is(point(all, 'store_calls', { op: 'create', outcome: 'ok' })!.value, 32);
    assert.is(point(all, 'store_calls', { op: 'get', outcome: 'ok' })!.value, 3, 'counted across the restart');
    assert.is(point(all, 'store_calls', { op: 'patch', outcome: 'ERR_SESSION_TOO_LARGE' })!.value, 1);
    assert.is(all.get('supervised_sessions_store_calls')!.dataPointType, DataPointType.SUM);
    assert.is(point(all, 'restarts', { child: 'store' })!.value, 1);
    assert.is(point(all, 'sweeps', { trigger: 'signal' })!.value, 1);
    assert.is(point(all, 'swept_sessions')!.value, 0);
    assert.is(point(all, 'live_sessions')!.value, 32, 'as of the sweep');

    const gets = histogram(all, 'store_call_seconds', { op: 'get' });
    assert.is(gets.count, 3);
    assert.ok(gets.sum > 0);
    assert.equal(gets.buckets.boundaries, TIME_BUCKETS, 'the same buckets as app.metrics()');
    assert.is(all.get('supervised_sessions_store_call_seconds')!.descriptor.unit, 's');
    const batches = histogram(all, 'batch_calls');
    assert.ok(batches.sum >= 32 + 3 + 1, `every call answered in some transaction: ${batches.sum}`);
    assert.ok(batches.count < batches.sum, `more than one call per transaction: ${batches.count} transactions for ${batches.sum} calls`);
    assert.is(histogram(all, 'sweep_seconds').count, 1);

    // The SDK's figures agree with app.metrics() (one source).
    const text = app.metrics();
    assert.match(text, /^supervised_sessions_store_calls_total\{op="create",outcome="ok"\} 32$/m);
    assert.match(text, /^supervised_sessions_store_call_seconds_count\{op="get"\} 3$/m);

    // Once stopped, the app's callback is removed (nothing keeps the app
    // alive): a delta reader sees no new observation.
    const observed = async () => {
      deltaExporter.reset();
      await deltaReader.forceFlush();
      return deltaExporter
        .getMetrics()
        .flatMap((r) => r.scopeMetrics)
        .filter((s) => s.scope.name === 'supervised-sessions')
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === 'supervised_sessions_up')
        .reduce((n, m) => n + m.dataPoints.length, 0);
    };
    assert.is(await observed(), 1, 'a running app is observed at each collection');
    await app.stop();
    assert.is(await observed(), 0, 'a stopped app no longer reports');
  }));

test('two apps in one process: their figures add up, and the one left keeps reporting', async () => {
  const temp = tempDir();
  try {
    // Histograms are recorded, so cumulative over this file: counted from here.
    const created = (all: Map<string, MetricData>) =>
      (all.has('supervised_sessions_store_call_seconds') ? point(all, 'store_call_seconds', { op: 'create' }) : undefined)
        ? histogram(all, 'store_call_seconds', { op: 'create' }).count
        : 0;
    const base = created(await collect());
    const a = await startSessionApp({ database: join(temp.dir, 'a.db'), sweepSignal: false });
    const b = await startSessionApp({ database: join(temp.dir, 'b.db'), sweepSignal: false });
    try {
      await Promise.all([1, 2, 3].map((n) => a.store.put(null, { n })));
      await Promise.all([1, 2, 3, 4, 5].map((n) => b.store.put(null, { n })));
      await a.store.count();
      await b.store.count();
      let all = await collect();
      assert.is(point(all, 'store_calls', { op: 'create', outcome: 'ok' })!.value, 8);
      assert.is(point(all, 'live_sessions')!.value, 8);
      assert.is(created(all) - base, 8);
      // A third app on a's store: its count is of the same rows, counted once.
      const c = await startSessionApp({ database: join(temp.dir, 'a.db'), sweepSignal: false });
      try {
        await c.store.count();
        all = await collect();
        assert.is(point(all, 'live_sessions')!.value, 8, 'two apps on one store are not added up');
      } finally {
        await c.stop();
      }
      await a.stop();
      await b.store.put(null, { n: 6 });
      all = await collect();
      // Cumulative: the SDK keeps what it last read of a series; the live app's figures go on.
      assert.is(point(all, 'store_calls', { op: 'create', outcome: 'ok' })!.value, 6, 'the stopped app left the sum');
      assert.is(point(all, 'up')!.value, 1);
    } finally {
      await a.stop();
      await b.stop();
    }
  } finally {
    temp.remove();
  }
});

test('a provider registered while an app runs: an app started afterwards reports to it, the first keeps its own', async () => {
  const temp = tempDir();
  const secondExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const secondReader = new PeriodicExportingMetricReader({ exporter: secondExporter, exportIntervalMillis: 3_600_000 });
  const second = new MeterProvider({ readers: [secondReader] });
  const a = await startSessionApp({ database: join(temp.dir, 'a.db'), sweepSignal: false });
  try {
    await a.store.put(null, { a: 1 });
    metrics.disable();
    metrics.setGlobalMeterProvider(second);
    const b = await startSessionApp({ database: join(temp.dir, 'b.db'), sweepSignal: false });
    try {
      await Promise.all([1, 2].map((n) => b.store.put(null, { n })));
      secondExporter.reset();
      await secondReader.forceFlush();
      const created = secondExporter
        .getMetrics()
        .flatMap((r) => r.scopeMetrics)
        .filter((m) => m.scope.name === 'supervised-sessions')
        .flatMap((m) => m.metrics)
        .find((m) => m.descriptor.name === 'supervised_sessions_store_calls')
        ?.dataPoints.find((p) => p.attributes.op === 'create' && p.attributes.outcome === 'ok')?.value;
      assert.is(created, 2, 'the new provider sees the app started under it');
      assert.is(point(await collect(), 'store_calls', { op: 'create', outcome: 'ok' })!.value, 1, 'the first provider keeps the first app');
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
    await second.shutdown();
    metrics.disable();
    metrics.setGlobalMeterProvider(provider);
    temp.remove();
  }
});

// A sweep set off by a signal does not keep an idle process alive (an idle
// app never does); this suite waits for one, so it keeps itself alive.
const keepAlive = setInterval(() => {}, 1000);
test.after(async () => {
  clearInterval(keepAlive);
  await provider.shutdown();
});

test.run();
