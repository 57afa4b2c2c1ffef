import { Piscina } from 'piscina';
import type { Worker } from 'node:worker_threads';
import type { ChildSpec, ExitReason, Incarnation } from '../runtime/child.ts';
import { safeDelay } from '../runtime/timers.ts';
import type { ExpiryPolicy } from '../store/expiry.ts';
import type { SweepTask } from '../engines/engine.ts';
import type { CleanerTask } from './sweep-task.ts';
import { fromWire, type WireError } from '../errors.ts';

// Resolves to sweep-task.ts under src/ and to sweep-task.js under dist/.
const HOUSEKEEPING_INTERVAL_MS = 1000;

const TASK_FILE = new URL(`./sweep-task${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

export interface CleanerChildOptions {
  /** null: no database of its own (':memory:' stores are swept by their store's actor). */
  database: string | null;
  table: string;
  policy: ExpiryPolicy;
  busyTimeoutMs: number;
  /** The engine's cleaner module (engines/engine.ts, Sweeper). */
  sweeper: URL;
  /** Whether the sweeper wants its housekeeping once a second between sweeps (engines/engine.ts). */
  housekeeping: boolean;
  /** What the engine shares with the store's actor (SQLite's write gate). */
  shared: Record<string, unknown>;
}

/** The live cleaner incarnation, as the sweep schedule uses it. */
export interface CleanerIncarnation extends Incarnation {
  sweep(): Promise<{ deleted: number; skipped: boolean; live: number | null }>;
}

/**
 * The cleaner as a supervised child: each incarnation is a fresh one-thread
 * piscina pool, and that pool's single long-lived thread is the child's
 * thread. When the thread exits unasked (a crash, `kill('cleaner')`), the
 * incarnation is over: the pool is destroyed and the supervisor starts a new
 * one; piscina's own replacement of the thread is never relied on.
 */
export class CleanerChild implements ChildSpec {
  readonly name = 'cleaner';
  readonly #options: CleanerChildOptions;
  current: CleanerIncarnation | null = null;
  /** Resolved whenever an incarnation becomes ready (for sweeps waiting on a restart). */
  #readyWaiters: Array<() => void> = [];

  constructor(options: CleanerChildOptions) {
    this.#options = options;
  }

  /** The current incarnation, or the next one to become ready. */
  whenReady(): Promise<CleanerIncarnation> {
    if (this.current) return Promise.resolve(this.current);
    return new Promise((resolve) => this.#readyWaiters.push(() => resolve(this.current!)));
  }

  async start(): Promise<Incarnation> {
    const options = this.#options;
    const pool = new Piscina({
      filename: TASK_FILE,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      niceIncrement: 10,
    });
    const base = {
      database: options.database,
      table: options.table,
      busyTimeoutMs: options.busyTimeoutMs,
      sweeper: options.sweeper.href,
      shared: options.shared,
    };
    let threadId: number;
    try {
      threadId = (await pool.run(base, { name: 'ready' })) as number;
    } catch (error) {
      await pool.destroy();
      throw error;
    }
    const worker: Worker | undefined = pool.threads.find((thread) => thread.threadId === threadId);
    if (!worker) {
      await pool.destroy();
      throw new Error('the cleaner pool has no thread');
    }

    const abort = new SharedArrayBuffer(4);
    const flag = new Int32Array(abort);
    let stopRequested = false;
    let killRequested = false;
    let lastError: Error | null = null;
    let running: Promise<unknown> | null = null;
    // piscina rejects the running task and reports an idle thread's error as
    // an 'error' event; either way the exit below ends the incarnation.
    pool.on('error', (error: Error) => {
      lastError = error;
    });
    worker.on('error', (error) => {
      lastError = error;
    });

    const exited = new Promise<ExitReason>((resolve) => {
      worker.once('exit', (code) => {
        if (this.current === incarnation) this.current = null;
        // piscina would start a replacement thread: this pool is done instead.
        void pool.destroy().catch(() => {});
        if (killRequested) resolve({ kind: 'killed' });
        else if (stopRequested) resolve({ kind: 'shutdown' });
        else if (lastError) resolve({ kind: 'crashed', error: lastError });
        else
          resolve(code === 0 ? { kind: 'normal' } : { kind: 'crashed', error: new Error(`the cleaner thread exited with code ${code}`) });
      });
    });

    // Once a second, when no sweep is running, the engine's housekeeping
    // (SQLite copies the WAL back into the database from this thread), for
    // an engine that wants any.
    const checkpoints =
      options.database === null || !options.housekeeping
        ? null
        : setInterval(() => {
            if (running || stopRequested) return;
            running = pool
              .run(base, { name: 'housekeep' })
              .catch(() => {})
              .finally(() => {
                running = null;
              });
          }, HOUSEKEEPING_INTERVAL_MS);
    checkpoints?.unref();
    void exited.then(() => {
      if (checkpoints) clearInterval(checkpoints);
    });

    const incarnation: CleanerIncarnation = {
      threadId,
      exited,
      sweep: async () => {
        if (options.database === null) throw new TypeError('this cleaner has no database of its own');
        // A checkpoint in progress finishes first: the pool runs one task at a time.
        if (running) await running;
        const task: CleanerTask<SweepTask> = { ...base, database: options.database, policy: options.policy, abort };
        const run = pool.run(task, { name: 'sweep' }) as Promise<{
          deleted: number;
          skipped: boolean;
          live: number | null;
          error?: WireError;
        }>;
        running = run;
        try {
          const { deleted, skipped, live, error } = await run;
          if (error) throw fromWire(error);
          return { deleted, skipped, live };
        } finally {
          if (running === run) running = null;
        }
      },
      stop: async (timeoutMs) => {
        stopRequested = true;
        if (checkpoints) clearInterval(checkpoints);
        // Ask a running sweep to stop after its current batch (a batch is
        // one transaction: it commits whole), then wait at most timeoutMs.
        Atomics.store(flag, 0, 1);
        const timer = setTimeout(() => {
          killRequested = true;
          void worker.terminate();
        }, safeDelay(timeoutMs));
        if (running) await running.catch(() => {});
        await pool.run(undefined, { name: 'close' }).catch(() => {});
        await pool.destroy().catch(() => {});
        const reason = await exited;
        clearTimeout(timer);
        return reason;
      },
      kill: async () => {
        // An exit we did not ask the supervisor for: it restarts the cleaner
        // and counts it, like OTP's exit(Pid, kill).
        killRequested = true;
        await worker.terminate();
        await exited;
      },
    };
    this.current = incarnation;
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const resolve of waiters) resolve();
    return incarnation;
  }
}
