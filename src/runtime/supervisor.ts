import { EventEmitter } from 'node:events';
import { createActor, type Actor } from 'xstate';
import { describeExit, type ChildSpec, type Incarnation } from './child.ts';
import { supervisorMachine, type ChildState, type SupervisorHost } from './supervisor-machine.ts';

export interface SupervisorOptions {
  /** Started in this order, stopped in the reverse one. */
  children: ChildSpec[];
  /** OTP MaxR: more than this many restarts within the period and the supervisor gives up. */
  intensity: number;
  /** OTP MaxT, in milliseconds. */
  periodMs: number;
  /** How long a child gets to stop gracefully before it is terminated. */
  shutdownTimeoutMs: number;
}

export type SupervisorState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ChildStatus {
  state: ChildState;
  restarts: number;
  threadId: number | null;
}

interface Slot {
  spec: ChildSpec;
  incarnation: Incarnation | null;
  /** The start in progress, if any (first start or a restart). */
  starting: Promise<void> | null;
  /** Set once we are stopping this child: its exit is then expected, not a crash. */
  stopping: boolean;
}

/**
 * A one_for_one supervisor of permanent children. The lifecycle and the
 * restart counting live in `supervisorMachine`; this class holds the live
 * incarnations and performs the side effects the machine asks for.
 *
 * Events: `'restart'` `{ child, reason, restarts }`, `'failed'` `(Error)` when
 * it gives up (the owner re-emits it as it sees fit: an EventEmitter `'error'`
 * would throw here if nobody listened).
 */
export class Supervisor extends EventEmitter {
  readonly #slots: Slot[];
  readonly #shutdownTimeoutMs: number;
  readonly #actor: Actor<typeof supervisorMachine>;
  #stopped: Promise<void> | null = null;

  constructor(options: SupervisorOptions) {
    super();
    this.#slots = options.children.map((spec) => ({ spec, incarnation: null, starting: null, stopping: false }));
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs;
    const host: SupervisorHost = {
      startAll: () => this.#startAll(),
      stopAll: () => this.#stopAll(),
      restartChild: (child) => this.#restartChild(this.#slot(child)),
      onRestart: (child, reason, restarts) => this.emit('restart', { child, reason, restarts }),
      onGiveUp: (_child, failure) => this.emit('failed', failure),
    };
    this.#actor = createActor(supervisorMachine, {
      input: {
        host,
        children: options.children.map((child) => child.name),
        intensity: options.intensity,
        periodMs: options.periodMs,
      },
    });
  }

  /** Starts the children in order; resolves once all are ready, rejects if one fails to start. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const subscription = this.#actor.subscribe((snapshot) => {
        if (snapshot.matches('starting')) return;
        subscription.unsubscribe();
        if (snapshot.context.startError) reject(snapshot.context.startError);
        else resolve();
      });
      this.#actor.start();
    });
  }

  /** Stops the children in reverse order; idempotent; on a failed supervisor it only waits for the cleanup. */
  stop(): Promise<void> {
    this.#stopped ??= new Promise((resolve) => {
      const done = () => {
        const snapshot = this.#actor.getSnapshot();
        return snapshot.matches('stopped') || snapshot.matches('failed');
      };
      if (done()) return resolve();
      const subscription = this.#actor.subscribe(() => {
        if (!done()) return;
        subscription.unsubscribe();
        resolve();
      });
      this.#actor.send({ type: 'STOP' });
    });
    return this.#stopped;
  }

  /** Terminates a child's thread abruptly, like a crash; resolves once the exit is seen. */
  async kill(child: string): Promise<void> {
    const slot = this.#slot(child);
    if (!slot.incarnation || slot.stopping) return;
    await slot.incarnation.kill();
  }

  get state(): SupervisorState {
    const snapshot = this.#actor.getSnapshot();
    if (snapshot.matches('failing')) return 'failed';
    return snapshot.value as SupervisorState;
  }

  children(): Record<string, ChildStatus> {
    const context = this.#actor.getSnapshot().context;
    const result: Record<string, ChildStatus> = {};
    for (const slot of this.#slots) {
      const child = context.children[slot.spec.name];
      result[slot.spec.name] = {
        state: child.state,
        restarts: child.restarts,
        threadId: child.state === 'running' && slot.incarnation ? slot.incarnation.threadId : null,
      };
    }
    return result;
  }

  #slot(name: string): Slot {
    const slot = this.#slots.find((candidate) => candidate.spec.name === name);
    if (!slot) throw new TypeError(`unknown child "${name}"`);
    return slot;
  }

  async #startAll(): Promise<void> {
    const started: Slot[] = [];
    try {
      for (const slot of this.#slots) {
        await this.#startChild(slot);
        started.push(slot);
        this.#actor.send({ type: 'CHILD_STARTED', child: slot.spec.name });
      }
    } catch (error) {
      // OTP: a child that fails to start aborts the supervisor's start; the
      // ones already started are terminated in reverse order.
      for (const slot of started.reverse()) await this.#stopChild(slot);
      throw error;
    }
  }

  async #stopAll(): Promise<void> {
    for (const slot of [...this.#slots].reverse()) await this.#stopChild(slot);
  }

  #startChild(slot: Slot): Promise<void> {
    const starting = slot.spec.start().then((incarnation) => {
      slot.incarnation = incarnation;
      void incarnation.exited.then((reason) => {
        if (slot.incarnation === incarnation) slot.incarnation = null;
        if (slot.stopping) return;
        this.#actor.send({ type: 'CHILD_EXITED', child: slot.spec.name, reason: describeExit(reason), at: performance.now() });
      });
    });
    slot.starting = starting;
    void starting.then(
      () => {
        if (slot.starting === starting) slot.starting = null;
      },
      () => {
        if (slot.starting === starting) slot.starting = null;
      },
    );
    return starting;
  }

  #restartChild(slot: Slot): void {
    if (slot.stopping) return;
    this.#startChild(slot).then(
      () => {
        // A stop that began while this incarnation was starting has already
        // waited for it and stopped it; do not report it as running.
        if (!slot.stopping) this.#actor.send({ type: 'CHILD_STARTED', child: slot.spec.name });
      },
      (error: unknown) => {
        // OTP: a restart that fails to start is retried, and each try counts as a restart.
        if (slot.stopping) return;
        const reason = error instanceof Error ? error : new Error(String(error));
        this.#actor.send({ type: 'CHILD_EXITED', child: slot.spec.name, reason, at: performance.now() });
      },
    );
  }

  async #stopChild(slot: Slot): Promise<void> {
    slot.stopping = true;
    if (slot.starting) await slot.starting.catch(() => {});
    const incarnation = slot.incarnation;
    if (incarnation) await incarnation.stop(this.#shutdownTimeoutMs);
  }
}
