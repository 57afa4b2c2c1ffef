import { createActor, type Actor } from 'xstate';
import { setLongTimeout } from '../runtime/timers.ts';
import { scheduleMachine, type ScheduleHost, type SweepReport, type SweepTrigger } from './schedule-machine.ts';

export interface SweepScheduleOptions {
  intervalMs: number;
  /** The signal that triggers a sweep now, or false for none. */
  signal: NodeJS.Signals | false;
  /** Deletes dead sessions; resolves with how many, and whether another process was sweeping instead. */
  run(trigger: SweepTrigger): Promise<{ deleted: number; skipped: boolean; live: number | null }>;
  onSweep(report: SweepReport): void;
  onSweepError(error: Error, trigger: SweepTrigger): void;
  /** The error manual sweeps still waiting get when the schedule stops. */
  stoppedError(): Error;
}

interface Waiter {
  resolve(report: SweepReport): void;
  reject(error: Error): void;
}

/**
 * The cleaner's schedule on the main thread: an interval timer with ±10 %
 * jitter (processes sharing a file spread their sweeps out), the sweep
 * signal (signals reach only the main thread, never a worker), and manual
 * sweeps. A manual caller is answered by the first sweep that starts after
 * its call, so what it sees reflects the state at the time it asked.
 */
export class SweepSchedule {
  readonly #options: SweepScheduleOptions;
  readonly #actor: Actor<typeof scheduleMachine>;
  #timer: { clear(): void } | null = null;
  #waitingForNext: Waiter[] = [];
  #waitingForCurrent: Waiter[] = [];
  #onSignal = () => this.#actor.send({ type: 'TRIGGER', trigger: 'signal' });
  #stopped = false;
  lastReport: SweepReport | null = null;

  constructor(options: SweepScheduleOptions) {
    this.#options = options;
    const host: ScheduleHost = {
      sweep: async (trigger) => {
        const started = performance.now();
        const { deleted, skipped, live } = await options.run(trigger);
        return { deleted, durationMs: performance.now() - started, trigger, skipped, live };
      },
      onSweepStart: () => {
        this.#waitingForCurrent = this.#waitingForNext;
        this.#waitingForNext = [];
      },
      onSweepDone: (report) => {
        this.lastReport = report;
        for (const waiter of this.#takeCurrent()) waiter.resolve(report);
        options.onSweep(report);
      },
      onSweepFailed: (error, trigger) => {
        for (const waiter of this.#takeCurrent()) waiter.reject(error);
        options.onSweepError(error, trigger);
      },
      armTimer: () => {
        if (this.#stopped) return;
        const jitter = 1 + (Math.random() * 0.2 - 0.1);
        // Unref'd: a sweep timer never keeps the process alive.
        this.#timer = setLongTimeout(() => this.#actor.send({ type: 'TRIGGER', trigger: 'timer' }), options.intervalMs * jitter);
      },
      clearTimer: () => {
        this.#timer?.clear();
        this.#timer = null;
      },
    };
    this.#actor = createActor(scheduleMachine, { input: { host } });
  }

  start(): void {
    this.#actor.start();
    if (this.#options.signal) process.on(this.#options.signal, this.#onSignal);
  }

  sweep(): Promise<SweepReport> {
    if (this.#stopped) return Promise.reject(this.#options.stoppedError());
    return new Promise((resolve, reject) => {
      this.#waitingForNext.push({ resolve, reject });
      this.#actor.send({ type: 'TRIGGER', trigger: 'manual' });
    });
  }

  /** Removes the timer and the signal handler; waiting callers get the stopped error. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#options.signal) process.off(this.#options.signal, this.#onSignal);
    this.#actor.send({ type: 'STOP' });
    this.#timer?.clear();
    this.#timer = null;
    const error = this.#options.stoppedError();
    for (const waiter of [...this.#takeCurrent(), ...this.#waitingForNext]) waiter.reject(error);
    this.#waitingForNext = [];
  }

  #takeCurrent(): Waiter[] {
    const waiters = this.#waitingForCurrent;
    this.#waitingForCurrent = [];
    return waiters;
  }
}
