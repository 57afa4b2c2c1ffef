// The app's figures through OpenTelemetry (API.md "Operating it"), when the
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
interface Histogram { record(value: number, attributes?: Attributes): void }
interface Observable { readonly __observable?: never }
interface BatchResult { observe(instrument: Observable, value: number, attributes?: Attributes): void }
type BatchCallback = (result: BatchResult) => void;
interface InstrumentOptions { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } }
interface Meter {
  createHistogram(name: string, options?: InstrumentOptions): Histogram;
  createObservableCounter(name: string, options?: InstrumentOptions): Observable;
  createObservableGauge(name: string, options?: InstrumentOptions): Observable;
  addBatchObservableCallback(callback: BatchCallback, observables: Observable[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: Observable[]): void;
}
interface MetricsApi { metrics: { getMeter(name: string, version?: string): Meter } }

/** What the app's figures look like from here (metrics.ts's Metrics). */
export interface ObservedFigures {
  up(): boolean;
  pending(): number;
  liveSessions(): number | null;
  storeCalls(): Iterable<{ labels: string[]; value: number }>;
  restarts(): Iterable<{ labels: string[]; value: number }>;
  sweeps(): Iterable<{ labels: string[]; value: number }>;
  swept(): number;
}

/** Where metrics.ts records the histograms while a provider listens. */
export interface OtelSink {
  callSeconds(op: string, seconds: number): void;
  batchCalls(calls: number): void;
  sweepSeconds(seconds: number): void;
  /** Stops reporting (app.stop()): the callbacks are removed, nothing more is recorded. */
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
  const meter = api.metrics.getMeter('supervised-sessions', packageVersion());
  const name = (suffix: string) => `supervised_sessions_${suffix}`;
  const callSeconds = meter.createHistogram(name('store_call_seconds'), { description: 'Time from a store call to its reply, restarts included.', unit: 's', advice: { explicitBucketBoundaries: TIME_BUCKETS } });
  const batchCalls = meter.createHistogram(name('batch_calls'), { description: 'Calls answered per store transaction (group commit).', unit: '{call}', advice: { explicitBucketBoundaries: BATCH_BUCKETS } });
  const sweepSeconds = meter.createHistogram(name('sweep_seconds'), { description: 'Duration of a sweep.', unit: 's', advice: { explicitBucketBoundaries: TIME_BUCKETS } });
  const up = meter.createObservableGauge(name('up'), { description: '1 while the app is running.' });
  const pending = meter.createObservableGauge(name('mailbox_pending'), { description: 'Store calls waiting now (in flight or queued).', unit: '{call}' });
  const live = meter.createObservableGauge(name('live_sessions'), { description: 'Live sessions, as of the last sweep or count().', unit: '{session}' });
  const storeCalls = meter.createObservableCounter(name('store_calls'), { description: 'Store calls by operation and outcome (ok, or the error code).', unit: '{call}' });
  const restarts = meter.createObservableCounter(name('restarts'), { description: 'Restarts of a supervised child.', unit: '{restart}' });
  const sweeps = meter.createObservableCounter(name('sweeps'), { description: 'Sweeps of dead sessions, by trigger.', unit: '{sweep}' });
  const swept = meter.createObservableCounter(name('swept_sessions'), { description: 'Dead sessions deleted by sweeps.', unit: '{session}' });
  const observables = [up, pending, live, storeCalls, restarts, sweeps, swept];
  const callback: BatchCallback = (result) => {
    result.observe(up, figures.up() ? 1 : 0);
    result.observe(pending, figures.pending());
    const liveNow = figures.liveSessions();
    if (liveNow !== null) result.observe(live, liveNow);
    for (const { labels: [op, outcome], value } of figures.storeCalls()) result.observe(storeCalls, value, { op, outcome });
    for (const { labels: [child], value } of figures.restarts()) result.observe(restarts, value, { child });
    for (const { labels: [trigger], value } of figures.sweeps()) result.observe(sweeps, value, { trigger });
    result.observe(swept, figures.swept());
  };
  meter.addBatchObservableCallback(callback, observables);
  // One attributes object per op, made once: recording allocates nothing.
  const byOp = new Map<string, Attributes>();
  let open = true;
  return {
    callSeconds(op, seconds) {
      if (!open) return;
      let attributes = byOp.get(op);
      if (!attributes) byOp.set(op, attributes = { op });
      callSeconds.record(seconds, attributes);
    },
    batchCalls(calls) { if (open) batchCalls.record(calls); },
    sweepSeconds(seconds) { if (open) sweepSeconds.record(seconds); },
    close() {
      if (!open) return;
      open = false;
      meter.removeBatchObservableCallback(callback, observables);
    },
  };
}
