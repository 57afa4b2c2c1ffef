import { EventEmitter } from 'node:events';
import { resolveConfig, type ResolvedConfig, type SessionAppConfig } from './config.ts';
import { AppStoppedError, fromWire, StoreUnavailableError } from './errors.ts';
import { MailboxClient } from './runtime/mailbox-client.ts';
import { mailboxChild } from './runtime/mailbox-child.ts';
import { Supervisor, type ChildStatus } from './runtime/supervisor.ts';
import { safeDelay } from './runtime/timers.ts';
import { Clock, clockOf } from './runtime/clock.ts';
import { CleanerChild } from './cleaner/cleaner-child.ts';
import { SweepSchedule } from './cleaner/sweep-schedule.ts';
import type { SweepReport, SweepTrigger } from './cleaner/schedule-machine.ts';
import { expiryPolicy } from './store/expiry.ts';
import { MailboxSessionStore, type SessionStore } from './store/session-store.ts';
import { engineFor } from './engines/index.ts';
import { restartChannel, sweepChannel } from './diagnostics.ts';
import { Metrics } from './metrics.ts';
import { openTelemetrySink } from './otel.ts';

export type { SweepReport, SweepTrigger };
export type AppState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';
export type ChildName = 'store' | 'cleaner';
export type { ChildStatus };

export interface AppStatus {
  state: AppState;
  children: { store: ChildStatus; cleaner: ChildStatus };
}

export interface RestartEvent {
  child: ChildName;
  reason: Error;
  restarts: number;
}

/** Rows per mailbox call when the store actor itself sweeps a ':memory:' store. */
const MEMORY_SWEEP_BATCH = 500;

/**
 * The running application: the supervisor of the store actor and the
 * cleaner, the mailbox client (`store`), and the sweep schedule.
 *
 * Events: 'restart' RestartEvent, 'sweep' SweepReport, 'sweepError' Error
 * (a sweep that failed; it is retried at the next trigger), and 'error' when
 * the supervisor gives up.
 */
export class SessionApp extends EventEmitter {
  readonly store: SessionStore;
  readonly config: Readonly<ResolvedConfig>;
  readonly #mailbox: MailboxClient;
  readonly #supervisor: Supervisor;
  readonly #schedule: SweepSchedule;
  readonly #metrics: Metrics;
  /** Only the store actor can reach the data (SQLite's ':memory:'): it sweeps, and the store is this app's alone. */
  readonly #ownStore: boolean;
  #state: AppState = 'starting';
  #stopping: Promise<void> | null = null;

  /** @internal use startSessionApp() */
  constructor(config: ResolvedConfig, clock: Clock = new Clock()) {
    super();
    this.config = Object.freeze({ ...config, restart: Object.freeze({ ...config.restart }) });
    const metrics = new Metrics();
    this.#metrics = metrics;
    const mailbox = new MailboxClient({
      timeoutMs: config.requestTimeout,
      maxPending: config.maxPendingCalls,
      onBatch: (calls) => metrics.batch(calls),
      onSettle: (op, startedAt, error) => metrics.call(op, startedAt, error),
      errors: {
        full: (op, max) => new StoreUnavailableError(`"${op}" refused: ${max} store calls are already waiting (maxPendingCalls)`),
        timeout: (op, ms) => new StoreUnavailableError(`the store did not answer "${op}" within requestTimeout (${ms} ms)`),
        poison: (op) =>
          new StoreUnavailableError(
            `"${op}" was in flight at two consecutive crashes of the store actor; it is failed instead of replayed`,
          ),
        closed: (reason) =>
          reason === 'stopped'
            ? new AppStoppedError('the session app is stopped')
            : new StoreUnavailableError('the session store is unavailable: its supervisor gave up after too many restarts'),
        decode: fromWire,
      },
    });
    this.#mailbox = mailbox;
    const engine = engineFor(config.database);
    const store = new MailboxSessionStore(
      mailbox,
      config.maxSessionBytes,
      config.timestamp,
      (live) => metrics.live(live),
      // A call refused for size before it was sent is a call of that op all the same.
      (op, error) => metrics.call(op, NaN, error),
      engine.renewedIds?.(config.database),
    );
    this.store = store;

    const policy = expiryPolicy(config);
    // ':memory:' exists only inside the store's actor's connection: the
    // cleaner opens none, and the actor sweeps (see `run` below).
    const memory = !engine.cleanerConnects(config.database);
    this.#ownStore = memory;
    // What the engine's two actors share across all their incarnations.
    const shared = engine.share(config);
    const cleaner = new CleanerChild({
      database: memory ? null : config.database,
      table: config.table,
      policy,
      busyTimeoutMs: Math.max(config.requestTimeout, 5000),
      sweeper: engine.sweeper,
      housekeeping: engine.housekeeping,
      // The app's clock: expiry reads it in every thread (runtime/clock.ts).
      shared: { ...shared.cleaner, clock: clock.buffer },
    });
    this.#supervisor = new Supervisor({
      intensity: config.restart.intensity,
      periodMs: config.restart.period * 1000,
      shutdownTimeoutMs: config.shutdownTimeout,
      children: [
        mailboxChild({
          name: 'store',
          filename: engine.storeWorker,
          workerData: { config, clock: clock.buffer, ...shared.store },
          client: mailbox,
          // A warning the store's actor has for the app (Redis: what a crash can lose), emitted here, on the app's thread.
          onReady: (info) => {
            const warning = (info as { warning?: { message: string; code: string } } | undefined)?.warning;
            if (warning) process.emitWarning(warning.message, { code: warning.code });
          },
        }),
        cleaner,
      ],
    });
    this.#supervisor.on('restart', (event: RestartEvent) => {
      // A thread killed while holding (say) SQLite's write gate cannot release it.
      shared.died(event.child);
      metrics.restarts.inc([event.child]);
      if (restartChannel.hasSubscribers) restartChannel.publish(event);
      this.emit('restart', event);
    });
    this.#supervisor.on('failed', (error: Error) => {
      this.#state = 'failed';
      // Once the supervisor has given up, every call fails at once.
      mailbox.close('failed');
      this.#schedule.stop();
      // Emitted outside the supervisor's transition: an 'error' nobody
      // listens to throws, as Node emitters do, and must not do so inside it.
      process.nextTick(() => this.emit('error', error));
    });

    this.#schedule = new SweepSchedule({
      intervalMs: config.cleanerInterval * 1000,
      signal: config.sweepSignal,
      run: async () => {
        if (memory) {
          // A ':memory:' database exists only inside the store actor's
          // connection: the actor sweeps it, one bounded batch per call.
          let deleted = 0;
          for (;;) {
            const n = await store.sweepBatch(MEMORY_SWEEP_BATCH);
            deleted += n;
            if (n < MEMORY_SWEEP_BATCH) return { deleted, skipped: false, live: null };
          }
        }
        const incarnation = await withTimeout(
          cleaner.whenReady(),
          config.requestTimeout,
          () => new StoreUnavailableError(`the cleaner was not running within requestTimeout (${config.requestTimeout} ms)`),
        );
        return incarnation.sweep();
      },
      onSweep: (report) => {
        metrics.sweep(report);
        if (sweepChannel.hasSubscribers) sweepChannel.publish(report);
        this.emit('sweep', report);
      },
      onSweepError: (error) => {
        metrics.sweepFailed();
        this.emit('sweepError', error);
      },
      stoppedError: () =>
        this.#state === 'failed'
          ? new StoreUnavailableError('the session app failed: its supervisor gave up')
          : new AppStoppedError('the session app is stopped'),
    });
  }

  /** @internal */
  async start(): Promise<void> {
    try {
      await this.#supervisor.start();
    } catch (error) {
      this.#state = 'stopped';
      this.#mailbox.close('stopped');
      throw error;
    }
    this.#state = 'running';
    this.#schedule.start();
    // OpenTelemetry, when the process has registered a MeterProvider (otel.ts).
    // Apps on one store count the same rows: the store names them (a store
    // only its actor can reach, as ':memory:' is, is a store of its own).
    const location = this.#ownStore ? `own\0${++ownStores}` : `${this.config.database}\0${this.config.table}`;
    this.#metrics.otel = openTelemetrySink(
      this.#metrics.figures(location, () => ({ up: this.#state === 'running', pending: this.#mailbox.pending })),
    );
  }

  status(): AppStatus {
    const children = this.#supervisor.children();
    return { state: this.#state, children: { store: children.store, cleaner: children.cleaner } };
  }

  /**
   * The app's own figures in the Prometheus text exposition format (0.0.4),
   * ready to serve on /metrics (docs/operating.md). No store call is made.
   */
  metrics(): string {
    return this.#metrics.render({ up: this.#state === 'running', pending: this.#mailbox.pending });
  }

  /** The last sweep's report, if any (for status pages). */
  get lastSweep(): SweepReport | null {
    return this.#schedule.lastReport;
  }

  sweep(): Promise<SweepReport> {
    if (this.#state === 'failed') return Promise.reject(new StoreUnavailableError('the session app failed: its supervisor gave up'));
    if (this.#state !== 'running') return Promise.reject(new AppStoppedError('the session app is stopped'));
    return this.#schedule.sweep();
  }

  async kill(child: ChildName): Promise<void> {
    if (child !== 'store' && child !== 'cleaner')
      throw new TypeError(`kill(child): expected 'store' or 'cleaner', got ${JSON.stringify(child)}`);
    await this.#supervisor.kill(child);
  }

  /**
   * Graceful and idempotent: refuse new calls, let the accepted ones finish
   * (each is bounded by requestTimeout), stop the schedule and its signal
   * handler, then the children in reverse start order.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const failed = this.#state === 'failed';
      if (!failed) this.#state = 'stopping';
      this.#mailbox.refuseNewCalls();
      this.#schedule.stop();
      try {
        await this.#mailbox.drained();
        await this.#supervisor.stop();
      } finally {
        this.#metrics.otel?.close();
      }
      this.#mailbox.close(failed ? 'failed' : 'stopped');
      if (this.#state !== 'failed') this.#state = 'stopped';
    })();
    return this.#stopping;
  }
}

let ownStores = 0;

function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(error()), safeDelay(ms));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (cause: unknown) => {
        clearTimeout(timer);
        reject(cause);
      },
    );
  });
}

/**
 * Validates the whole config (a ConfigError before any thread starts), then
 * starts the supervisor: the store actor, then the cleaner.
 */
export async function startSessionApp(config?: SessionAppConfig): Promise<SessionApp> {
  const resolved = resolveConfig(config);
  const app = new SessionApp(resolved, clockOf(config));
  await app.start();
  return app;
}
