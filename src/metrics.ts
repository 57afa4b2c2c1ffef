import type { ObservedFigures, OtelSink } from './otel.ts';

// The app's own figures, kept on the main thread (where the calls are made
// and the events arrive, so they survive restarts of the children), and
// rendered in the Prometheus text exposition format 0.0.4. Counting is a few
// Map updates per call: no store call, no allocation on the hot path beyond
// the first sample of each label set.

const PREFIX = 'supervised_sessions_';
/** Seconds: store calls and sweeps, from 0.5 ms to 30 s. */
export const TIME_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Calls per transaction. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (names: string[], values: string[]) =>
  names.length === 0 ? '' : `{${names.map((name, i) => `${name}="${escapeLabel(values[i])}"`).join(',')}}`;
const number = (value: number) => (Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN');

class Counter {
  readonly values = new Map<string, { labels: string[]; value: number }>();
  readonly name: string;
  readonly help: string;
  readonly labelNames: string[];
  constructor(name: string, help: string, labelNames: string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }
  inc(labelValues: string[], by = 1): void {
    this.sample(labelValues).value += by;
  }
  /** The sample of a label set, made at its first use (callers on the hot path keep it). */
  sample(labelValues: string[]): { labels: string[]; value: number } {
    const key = labelValues.join('\0');
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels: labelValues, value: 0 };
      this.values.set(key, entry);
    }
    return entry;
  }
  render(type = 'counter'): string[] {
    const lines = [`# HELP ${PREFIX}${this.name} ${this.help}`, `# TYPE ${PREFIX}${this.name} ${type}`];
    for (const { labels: values, value } of this.values.values())
      lines.push(`${PREFIX}${this.name}${labels(this.labelNames, values)} ${number(value)}`);
    return lines;
  }
}

interface HistogramSeries {
  labels: string[];
  counts: number[];
  sum: number;
  count: number;
}

class Histogram {
  readonly series = new Map<string, HistogramSeries>();
  readonly name: string;
  readonly help: string;
  readonly labelNames: string[];
  readonly buckets: number[];
  constructor(name: string, help: string, labelNames: string[], buckets: number[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.buckets = buckets;
  }
  observe(labelValues: string[], value: number): void {
    this.record(this.seriesOf(labelValues), value);
  }
  /** The series of a label set, made at its first use (callers on the hot path keep it). */
  seriesOf(labelValues: string[]): HistogramSeries {
    const key = labelValues.join('\0');
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels: labelValues, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, entry);
    }
    return entry;
  }
  record(entry: HistogramSeries, value: number): void {
    // Each bucket counts the observations at or below its bound (cumulated when rendered).
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        entry.counts[i]++;
        break;
      }
    }
    entry.sum += value;
    entry.count++;
  }
  render(): string[] {
    const name = `${PREFIX}${this.name}`;
    const lines = [`# HELP ${name} ${this.help}`, `# TYPE ${name} histogram`];
    for (const { labels: values, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i];
        lines.push(`${name}_bucket${labels([...this.labelNames, 'le'], [...values, String(bound)])} ${cumulative}`);
      });
      lines.push(`${name}_bucket${labels([...this.labelNames, 'le'], [...values, '+Inf'])} ${count}`);
      lines.push(`${name}_sum${labels(this.labelNames, values)} ${number(sum)}`);
      lines.push(`${name}_count${labels(this.labelNames, values)} ${count}`);
    }
    return lines;
  }
}

export class Metrics {
  readonly storeCalls = new Counter('store_calls_total', 'Store calls by operation and outcome (ok, or the error code).', [
    'op',
    'outcome',
  ]);
  readonly storeCallSeconds = new Histogram(
    'store_call_seconds',
    'Time from a store call to its reply, restarts included.',
    ['op'],
    TIME_BUCKETS,
  );
  readonly batchCalls = new Histogram('batch_calls', 'Calls answered per store transaction (group commit).', [], BATCH_BUCKETS);
  readonly restarts = new Counter('restarts_total', 'Restarts of a supervised child.', ['child']);
  readonly sweeps = new Counter('sweeps_total', 'Sweeps of dead sessions, by trigger.', ['trigger']);
  readonly swept = new Counter('swept_sessions_total', 'Dead sessions deleted by sweeps.', []);
  readonly sweepSeconds = new Histogram('sweep_seconds', 'Duration of a sweep.', [], TIME_BUCKETS);
  readonly sweepErrors = new Counter('sweep_errors_total', "Sweeps that failed (the app's sweepError event).", []);
  liveSessions: number | null = null;
  /** When live_sessions was counted (epoch ms). */
  liveCountedAt = 0;
  /** The OpenTelemetry histograms, while a MeterProvider listens (otel.ts). */
  otel: OtelSink | null = null;

  constructor() {
    // Every series an alert rule looks at exists from the start, at 0: the
    // first restart or sweep is then an increase, and "no sweep" is a 0,
    // not an empty result.
    this.swept.inc([], 0);
    this.sweepErrors.inc([], 0);
    for (const child of ['store', 'cleaner']) this.restarts.inc([child], 0);
    for (const trigger of ['timer', 'signal', 'manual']) this.sweeps.inc([trigger], 0);
  }

  /**
   * A store call settled: `started` from performance.now() at the call, NaN
   * for a call refused at once (counted, but no duration: it never waited).
   * `outcome` is the error's code, or its name when it has none.
   */
  call(op: string, started: number, error: Error | null): void {
    // The common case, an op that succeeded, touches two objects kept per op: no allocation.
    let series = this.#byOp.get(op);
    if (!series) {
      series = { ok: this.storeCalls.sample([op, 'ok']), seconds: this.storeCallSeconds.seriesOf([op]) };
      this.#byOp.set(op, series);
    }
    if (error === null) series.ok.value++;
    else this.storeCalls.inc([op, String((error as { code?: unknown }).code ?? error.name ?? 'Error')]);
    if (Number.isNaN(started)) return;
    const seconds = (performance.now() - started) / 1000;
    this.storeCallSeconds.record(series.seconds, seconds);
    this.otel?.callSeconds(op, seconds);
  }

  readonly #byOp = new Map<string, { ok: { value: number }; seconds: HistogramSeries }>();
  #batches: HistogramSeries | null = null;

  /** Live sessions counted now (by count() or at the end of a sweep). */
  live(count: number): void {
    this.liveSessions = count;
    this.liveCountedAt = Date.now();
  }

  /** One store transaction answered `calls` calls. */
  batch(calls: number): void {
    this.#batches ??= this.batchCalls.seriesOf([]);
    this.batchCalls.record(this.#batches, calls);
    this.otel?.batchCalls(calls);
  }

  sweep(report: { trigger: string; deleted: number; durationMs: number; live: number | null }): void {
    this.sweeps.inc([report.trigger]);
    this.swept.inc([], report.deleted);
    this.sweepSeconds.observe([], report.durationMs / 1000);
    this.otel?.sweepSeconds(report.durationMs / 1000);
    if (report.live !== null) this.live(report.live);
  }

  sweepFailed(): void {
    this.sweepErrors.inc([]);
  }

  /** The figures as OpenTelemetry's observable instruments read them. */
  figures(location: string, state: () => { up: boolean; pending: number }): ObservedFigures {
    return {
      location,
      up: () => state().up,
      pending: () => state().pending,
      liveSessions: () => this.liveSessions,
      liveCountedAt: () => this.liveCountedAt,
      sweepErrors: () => this.sweepErrors.values.get('')?.value ?? 0,
      storeCalls: () => this.storeCalls.values.values(),
      restarts: () => this.restarts.values.values(),
      sweeps: () => this.sweeps.values.values(),
      swept: () => this.swept.values.get('')?.value ?? 0,
    };
  }

  render(state: { up: boolean; pending: number }): string {
    const lines = [
      `# HELP ${PREFIX}up 1 while the app is running.`,
      `# TYPE ${PREFIX}up gauge`,
      `${PREFIX}up ${state.up ? 1 : 0}`,
      ...this.storeCalls.render(),
      ...this.storeCallSeconds.render(),
      `# HELP ${PREFIX}mailbox_pending Store calls waiting now (in flight or queued); at maxPendingCalls, calls fail at once.`,
      `# TYPE ${PREFIX}mailbox_pending gauge`,
      `${PREFIX}mailbox_pending ${state.pending}`,
      ...this.batchCalls.render(),
      ...this.restarts.render(),
      ...this.sweeps.render(),
      ...this.swept.render(),
      ...this.sweepSeconds.render(),
      ...this.sweepErrors.render(),
    ];
    if (this.liveSessions !== null) {
      lines.push(
        `# HELP ${PREFIX}live_sessions Live sessions, as of the last sweep or count().`,
        `# TYPE ${PREFIX}live_sessions gauge`,
        `${PREFIX}live_sessions ${this.liveSessions}`,
      );
      lines.push(
        `# HELP ${PREFIX}live_sessions_timestamp_seconds When live_sessions was counted (Unix time).`,
        `# TYPE ${PREFIX}live_sessions_timestamp_seconds gauge`,
        `${PREFIX}live_sessions_timestamp_seconds ${this.liveCountedAt / 1000}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}
