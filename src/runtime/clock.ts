// The app's clock for expiry: Date.now() plus an offset that every thread of
// the app reads from one SharedArrayBuffer (the main thread, the store actor,
// the cleaner). It is real time unless something moves it on: the tests do,
// instead of sleeping until sessions age (test/helpers.ts, `elapse`). Engines
// whose times come from their server (PostgreSQL) keep the server's clock.

/**
 * @internal The config slot a test passes its clock in (a symbol: no user
 * config key, never refused as unknown; not part of the public API).
 */
export const CLOCK = Symbol.for('supervised-sessions.clock');

export class Clock {
  readonly buffer: SharedArrayBuffer;
  readonly #offset: BigInt64Array;

  /** A clock of its own, or the app's, from the buffer another thread was given. */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.buffer = buffer;
    this.#offset = new BigInt64Array(buffer);
  }

  /** Epoch milliseconds, as Date.now(), moved on by what `advance` added. */
  now(): number {
    return Date.now() + Number(Atomics.load(this.#offset, 0));
  }

  /** Moves this clock (and every thread's view of it) `ms` milliseconds on. */
  advance(ms: number): void {
    Atomics.add(this.#offset, 0, BigInt(Math.round(ms)));
  }
}

/** The clock a config carries in its CLOCK slot, or a real one. */
export function clockOf(config: unknown): Clock {
  const given = typeof config === 'object' && config !== null ? (config as Record<symbol, unknown>)[CLOCK] : undefined;
  return given instanceof Clock ? given : new Clock();
}
