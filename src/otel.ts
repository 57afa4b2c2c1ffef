// The app's figures through OpenTelemetry (docs/operating.md), when the
// process has registered a global MeterProvider. `@opentelemetry/api` is an
// optional peer dependency: it is loaded only when a provider is registered,
// which is seen without loading anything, through the API's own global slot
// (`Symbol.for('opentelemetry.js.api.1')`, shared by every copy of API 1.x).
//
// Counters and gauges are observable: the SDK reads the main thread's figures
// (metrics.ts) when it collects, so they cost nothing per call and survive
// restarts of the children. Histograms are recorded as the calls settle.
// Names are those of app.metrics() without `_total`, with units, so the SDK's
// Prometheus exporter yields the same names.
import { createRequire } from 'node:module';
import { TIME_BUCKETS, BATCH_BUCKETS } from './metrics.ts';

const require = createRequire(import.meta.url);
const API_GLOBAL = Symbol.for('opentelemetry.js.api.1');

type Attributes = Record<string, string>;
interface Histogram {
  record(value: number, attributes?: Attributes): void;
}
interface Observable {
  readonly __observable?: never;
}
interface BatchResult {
  observe(instrument: Observable, value: number, attributes?: Attributes): void;
}
type BatchCallback = (result: BatchResult) => void;
interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}
interface Meter {
  createHistogram(name: string, options?: InstrumentOptions): Histogram;
  createObservableCounter(name: string, options?: InstrumentOptions): Observable;
  createObservableGauge(name: string, options?: InstrumentOptions): Observable;
  addBatchObservableCallback(callback: BatchCallback, observables: Observable[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: Observable[]): void;
}
interface MeterProvider {
  getMeter(name: string, version?: string): Meter;
}
interface MetricsApi {
  metrics: { getMeterProvider(): MeterProvider };
}

/** What the app's figures look like from here (metrics.ts's Metrics). */
export interface ObservedFigures {
  up(): boolean;
  pending(): number;
  /** The store the app counts live sessions in (database and table): apps on one store count the same rows. */
  location: string;
  liveSessions(): number | null;
  liveCountedAt(): number;
  storeCalls(): Iterable<{ labels: string[]; value: number }>;
  restarts(): Iterable<{ labels: string[]; value: number }>;
  sweeps(): Iterable<{ labels: string[]; value: number }>;
  swept(): number;
  sweepErrors(): number;
}

/** Where metrics.ts records the histograms while a provider listens. */
export interface OtelSink {
  callSeconds(op: string, seconds: number): void;
  batchCalls(calls: number): void;
  sweepSeconds(seconds: number): void;
  /** Stops reporting this app (app.stop()): its figures leave the callback, nothing more is recorded. */
  close(): void;
}

/** True when some copy of @opentelemetry/api 1.x has a global MeterProvider registered. */
export function meterProviderRegistered(): boolean {
  const slot = (globalThis as Record<symbol, { metrics?: unknown } | undefined>)[API_GLOBAL];
  return slot?.metrics != null;
}

function packageVersion(): string | undefined {
  try {
    return (require('../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

interface Instruments {
  callSeconds: Histogram;
  batchCalls: Histogram;
  sweepSeconds: Histogram;
  /** The apps reporting now: one callback observes them all, their figures summed. */
  apps: Set<ObservedFigures>;
  remove(): void;
}

// One set of instruments per MeterProvider, shared by every app of the
// process reporting to it: two apps observing the same instruments with the
// same attributes would overwrite each other's figures; summed in one
// callback, they add up. An app started after the provider was replaced
// reports to the new one.
const registry = new Map<MeterProvider, Instruments>();

function sum(
  into: Map<string, { attributes: Attributes; value: number }>,
  names: string[],
  series: Iterable<{ labels: string[]; value: number }>,
): void {
  for (const { labels, value } of series) {
    const key = labels.join('\0');
    const entry = into.get(key);
    if (entry) entry.value += value;
    else into.set(key, { attributes: Object.fromEntries(names.map((name, i) => [name, labels[i]])), value });
  }
}

function instruments(provider: MeterProvider): Instruments {
  const meter = provider.getMeter('supervised-sessions', packageVersion());
  const name = (suffix: string) => `supervised_sessions_${suffix}`;
  const up = meter.createObservableGauge(name('up'), { description: '1 while the app is running (every app of the process).' });
  const pending = meter.createObservableGauge(name('mailbox_pending'), {
    description: 'Store calls waiting now (in flight or queued).',
    unit: '{call}',
  });
  const live = meter.createObservableGauge(name('live_sessions'), {
    description: 'Live sessions, as of the last sweep or count().',
    unit: '{session}',
  });
  const liveAt = meter.createObservableGauge(name('live_sessions_timestamp_seconds'), {
    description: 'When live_sessions was counted (Unix time).',
    unit: 's',
  });
  const storeCalls = meter.createObservableCounter(name('store_calls'), {
    description: 'Store calls by operation and outcome (ok, or the error code).',
    unit: '{call}',
  });
  const restarts = meter.createObservableCounter(name('restarts'), { description: 'Restarts of a supervised child.', unit: '{restart}' });
  const sweeps = meter.createObservableCounter(name('sweeps'), { description: 'Sweeps of dead sessions, by trigger.', unit: '{sweep}' });
  const swept = meter.createObservableCounter(name('swept_sessions'), {
    description: 'Dead sessions deleted by sweeps.',
    unit: '{session}',
  });
  const sweepErrors = meter.createObservableCounter(name('sweep_errors'), { description: 'Sweeps that failed.', unit: '{sweep}' });
  const observables = [up, pending, live, liveAt, storeCalls, restarts, sweeps, swept, sweepErrors];
  const apps = new Set<ObservedFigures>();
  const callback: BatchCallback = (result) => {
    let allUp = 1;
    let waiting = 0;
    // Live sessions: the latest count of each store, summed over the stores
    // (two apps on one table count the same rows once).
    const byStore = new Map<string, { count: number; at: number }>();
    let sweptTotal = 0;
    let failedTotal = 0;
    const calls = new Map<string, { attributes: Attributes; value: number }>();
    const byChild = new Map<string, { attributes: Attributes; value: number }>();
    const byTrigger = new Map<string, { attributes: Attributes; value: number }>();
    for (const app of apps) {
      if (!app.up()) allUp = 0;
      waiting += app.pending();
      const count = app.liveSessions();
      if (count !== null) {
        const at = app.liveCountedAt();
        const known = byStore.get(app.location);
        if (!known || at > known.at) byStore.set(app.location, { count, at });
      }
      sweptTotal += app.swept();
      failedTotal += app.sweepErrors();
      sum(calls, ['op', 'outcome'], app.storeCalls());
      sum(byChild, ['child'], app.restarts());
      sum(byTrigger, ['trigger'], app.sweeps());
    }
    result.observe(up, allUp);
    result.observe(pending, waiting);
    if (byStore.size > 0) {
      let total = 0;
      let oldest = Infinity;
      for (const { count, at } of byStore.values()) {
        total += count;
        oldest = Math.min(oldest, at);
      }
      result.observe(live, total);
      // The sum is as old as its oldest part.
      result.observe(liveAt, oldest / 1000);
    }
    for (const { attributes, value } of calls.values()) result.observe(storeCalls, value, attributes);
    for (const { attributes, value } of byChild.values()) result.observe(restarts, value, attributes);
    for (const { attributes, value } of byTrigger.values()) result.observe(sweeps, value, attributes);
    result.observe(swept, sweptTotal);
    result.observe(sweepErrors, failedTotal);
  };
  meter.addBatchObservableCallback(callback, observables);
  return {
    callSeconds: meter.createHistogram(name('store_call_seconds'), {
      description: 'Time from a store call to its reply, restarts included.',
      unit: 's',
      advice: { explicitBucketBoundaries: TIME_BUCKETS },
    }),
    batchCalls: meter.createHistogram(name('batch_calls'), {
      description: 'Calls answered per store transaction (group commit).',
      unit: '{call}',
      advice: { explicitBucketBoundaries: BATCH_BUCKETS },
    }),
    sweepSeconds: meter.createHistogram(name('sweep_seconds'), {
      description: 'Duration of a sweep.',
      unit: 's',
      advice: { explicitBucketBoundaries: TIME_BUCKETS },
    }),
    apps,
    remove: () => meter.removeBatchObservableCallback(callback, observables),
  };
}

/**
 * The OpenTelemetry instruments over `figures`, or null when no
 * MeterProvider is registered or the API package cannot be loaded (then
 * nothing is loaded and nothing is recorded).
 */
export function openTelemetrySink(figures: ObservedFigures): OtelSink | null {
  if (!meterProviderRegistered()) return null;
  let api: MetricsApi;
  try {
    api = require('@opentelemetry/api') as MetricsApi;
  } catch {
    return null;
  }
  const provider = api.metrics.getMeterProvider();
  let set = registry.get(provider);
  if (!set) {
    set = instruments(provider);
    registry.set(provider, set);
  }
  const mine = set;
  set.apps.add(figures);
  // One attributes object per op, made once: recording allocates nothing.
  const byOp = new Map<string, Attributes>();
  let open = true;
  // A provider's record() that throws must not reach the request path (the
  // mailbox ignores a throwing hook too; this keeps the other figures going).
  return {
    callSeconds(op, seconds) {
      if (!open) return;
      let attributes = byOp.get(op);
      if (!attributes) {
        attributes = { op };
        byOp.set(op, attributes);
      }
      try {
        mine.callSeconds.record(seconds, attributes);
      } catch {
        /* see above */
      }
    },
    batchCalls(calls) {
      if (!open) return;
      try {
        mine.batchCalls.record(calls);
      } catch {
        /* see above */
      }
    },
    sweepSeconds(seconds) {
      if (!open) return;
      try {
        mine.sweepSeconds.record(seconds);
      } catch {
        /* see above */
      }
    },
    close() {
      if (!open) return;
      open = false;
      mine.apps.delete(figures);
      // The last app gone: the callback is removed, nothing keeps an app alive.
      if (mine.apps.size === 0 && registry.get(provider) === mine) {
        registry.delete(provider);
        mine.remove();
      }
    },
  };
}
