// The store actor and the cleaner are threads of one process writing one
// SQLite file. SQLite's own locking keeps them correct, but when a writer
// finds the lock taken, SQLite's default busy handler sleeps 1, 2, 5, 10 ms
// between retries: a request that meets a 1 ms sweep batch waits 8 ms.
//
// This gate only schedules them, through a SharedArrayBuffer: the actor
// waits on it with Atomics.wait and is woken the moment the cleaner's batch
// commits, and the cleaner does not start a batch while the actor waits.
// SQLite's locking stays the correctness mechanism: every wait here is
// bounded, and a holder that dies is released by the main thread.

export const FREE = 0;
export const ACTOR = 1;
export const CLEANER = 2;

const HOLDER = 0;
const WAITING = 1;

export function createGateBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

export class WriteGate {
  readonly #state: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#state = new Int32Array(buffer);
  }

  /**
   * the actor takes the gate, waiting at most `maxWaitMs` for a cleaner batch
   * to end. Returns false when it gave up waiting (it then proceeds without
   * the gate, on SQLite's busy_timeout alone).
   */
  acquireForActor(maxWaitMs = 200): boolean {
    const state = this.#state;
    if (Atomics.compareExchange(state, HOLDER, FREE, ACTOR) === FREE) return true;
    Atomics.add(state, WAITING, 1);
    try {
      const deadline = performance.now() + maxWaitMs;
      for (;;) {
        const holder = Atomics.compareExchange(state, HOLDER, FREE, ACTOR);
        if (holder === FREE) return true;
        const left = deadline - performance.now();
        if (left <= 0) return false;
        Atomics.wait(state, HOLDER, holder, left);
      }
    } finally {
      Atomics.sub(state, WAITING, 1);
    }
  }

  /** The cleaner takes the gate only when it is free and the actor is not waiting for it. */
  tryAcquireForCleaner(): boolean {
    const state = this.#state;
    if (Atomics.load(state, WAITING) > 0) return false;
    return Atomics.compareExchange(state, HOLDER, FREE, CLEANER) === FREE;
  }

  /** True while the actor waits: the cleaner ends its turn. */
  actorWaiting(): boolean {
    return Atomics.load(this.#state, WAITING) > 0;
  }

  release(holder: typeof ACTOR | typeof CLEANER): void {
    if (Atomics.compareExchange(this.#state, HOLDER, holder, FREE) === holder) Atomics.notify(this.#state, HOLDER);
  }
}

/** Run by the main thread when a child's thread is gone: whatever it held is free again. */
export function releaseDeadHolder(buffer: SharedArrayBuffer, holder: typeof ACTOR | typeof CLEANER): void {
  const state = new Int32Array(buffer);
  if (Atomics.compareExchange(state, HOLDER, holder, FREE) === holder) Atomics.notify(state, HOLDER);
}
