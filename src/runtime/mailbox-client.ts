import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '../errors.ts';
import { safeDelay } from './timers.ts';
import type { WireReply, WireRequest } from './mailbox-server.ts';

/** The errors the client raises, supplied by the layer above (runtime/ knows no sessions). */
export interface MailboxErrors {
  timeout(op: string, ms: number): Error;
  /** `maxPending` calls are already waiting. */
  full(op: string, max: number): Error;
  /** The request was in flight at two consecutive crashes of the actor. */
  poison(op: string): Error;
  /** The client was closed: `reason` is what `close()` was given. */
  closed(reason: 'stopped' | 'failed'): Error;
  decode(error: WireError): Error;
}

export interface MailboxClientOptions {
  timeoutMs: number;
  /** Calls that may wait at once (in flight or queued while the actor is down); one more fails at once. */
  maxPending?: number;
  errors: MailboxErrors;
  /** Told how many calls each reply message answered (the actor's batch size). */
  onBatch?(calls: number): void;
  /**
   * Told of every call once it settles: its op, when it was made
   * (performance.now(); NaN for a call refused at once), and its error or
   * null. A hook that throws is ignored: a call always settles.
   */
  onSettle?(op: string, startedAt: number, error: Error | null): void;
}

interface PendingRequest {
  id: number;
  op: string;
  args: unknown;
  resolve(value: unknown): void;
  reject(error: Error): void;
  deadline: number;
  /** How many crashes of the actor this request was in flight at. */
  crashes: number;
  sent: boolean;
  settled: boolean;
}

/**
 * The caller's side of an actor's mailbox: async request/reply over a
 * MessagePort that survives restarts of the actor.
 *
 * - Requests made in one event-loop turn leave as one message (flushed from
 *   setImmediate, after the poll phase has run every ready I/O callback).
 * - While the actor is down, requests wait; on `attach` of the next
 *   incarnation's port, everything unanswered is sent again, in call order.
 *   Replay is safe because the layer above makes every operation idempotent.
 * - A request in flight at a crash is a suspect. While suspects remain, the
 *   client sends one request at a time, so the next crash names exactly one
 *   culprit; a request in flight at two consecutive crashes is failed instead
 *   of replayed (a poison message must not crash-loop the actor).
 * - One timer serves every deadline: all requests share one timeout, so
 *   deadlines are ordered like the Map's insertion order.
 * - The port is unref'd; the deadline timer, which exists only while a call
 *   is pending, is what keeps the process alive until the call settles.
 */
export class MailboxClient {
  #timeoutMs: number;
  #maxPending: number;
  #errors: MailboxErrors;
  #onBatch: ((calls: number) => void) | null;
  #onSettle: ((op: string, startedAt: number, error: Error | null) => void) | null;
  #port: MessagePort | null = null;
  #pending = new Map<number, PendingRequest>();
  #outbox: PendingRequest[] = [];
  #nextId = 1;
  #inflight = 0;
  #suspects = 0;
  #flushScheduled = false;
  #timer: NodeJS.Timeout | null = null;
  #closed: 'stopped' | 'failed' | null = null;
  #drainWaiters: Array<() => void> = [];

  constructor(options: MailboxClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#maxPending = options.maxPending ?? Infinity;
    this.#errors = options.errors;
    this.#onBatch = options.onBatch ?? null;
    this.#onSettle = options.onSettle ?? null;
  }

  get pending(): number {
    return this.#pending.size;
  }

  get connected(): boolean {
    return this.#port !== null;
  }

  call(op: string, args: unknown): Promise<unknown> {
    if (this.#closed) return this.#refuse(op, this.#errors.closed(this.#closed));
    // Bounded: while the actor is down, calls would otherwise pile up at the
    // request rate for as long as requestTimeout.
    if (this.#pending.size >= this.#maxPending) return this.#refuse(op, this.#errors.full(op, this.#maxPending));
    return new Promise((resolve, reject) => {
      const request: PendingRequest = {
        id: this.#nextId++,
        op,
        args,
        resolve,
        reject,
        deadline: performance.now() + this.#timeoutMs,
        crashes: 0,
        sent: false,
        settled: false,
      };
      this.#pending.set(request.id, request);
      this.#outbox.push(request);
      if (!this.#timer) this.#armTimer(this.#timeoutMs);
      this.#scheduleFlush();
    });
  }

  /** Binds the port of a fresh incarnation and replays what is unanswered. */
  attach(port: MessagePort): void {
    this.#port = port;
    port.on('message', (replies: WireReply[]) => this.#onReplies(port, replies));
    port.unref();
    if (this.#closed) {
      port.close();
      this.#port = null;
      return;
    }
    this.#scheduleFlush();
  }

  /** The actor is gone: whatever was in flight is a suspect, or poison at its second crash. */
  detach(): void {
    const port = this.#port;
    this.#port = null;
    if (port) port.close();
    this.#inflight = 0;
    const outbox: PendingRequest[] = [];
    for (const request of this.#pending.values()) {
      if (request.sent) {
        request.sent = false;
        request.crashes++;
        if (request.crashes >= 2) {
          this.#settle(request, this.#errors.poison(request.op));
          continue;
        }
        if (request.crashes === 1) this.#suspects++;
      }
      outbox.push(request);
    }
    this.#outbox = outbox;
    this.#afterSettle();
  }

  /** Rejects everything pending and refuses every later call. */
  close(reason: 'stopped' | 'failed'): void {
    if (!this.#closed) this.#closed = reason;
    for (const request of this.#pending.values()) this.#settle(request, this.#errors.closed(reason));
    this.#outbox = [];
    const port = this.#port;
    this.#port = null;
    if (port) port.close();
    this.#afterSettle();
  }

  /** Refuses new calls (`closed('stopped')`) but lets the accepted ones complete. */
  refuseNewCalls(): void {
    if (!this.#closed) this.#closed = 'stopped';
  }

  /** Resolves when no call is pending. */
  drained(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const port = this.#port;
    if (!port) return;
    if (this.#suspects > 0) {
      // Quarantine: one request at a time, in call order, until no suspect is left.
      if (this.#inflight > 0) return;
      while (this.#outbox.length > 0) {
        const request = this.#outbox.shift()!;
        if (request.settled) continue;
        request.sent = true;
        this.#inflight = 1;
        port.postMessage([[request.id, request.op, request.args]] satisfies WireRequest[]);
        return;
      }
      return;
    }
    const batch: WireRequest[] = [];
    for (const request of this.#outbox) {
      if (request.settled) continue;
      request.sent = true;
      batch.push([request.id, request.op, request.args]);
    }
    this.#outbox = [];
    if (batch.length === 0) return;
    this.#inflight += batch.length;
    port.postMessage(batch);
  }

  #onReplies(port: MessagePort, replies: WireReply[]): void {
    // A late reply from a port we already left behind is ignored: its
    // requests have been replayed (or settled) since.
    if (port !== this.#port) return;
    if (this.#onBatch) {
      try {
        this.#onBatch(replies.length);
      } catch {
        /* a hook never stops the replies */
      }
    }
    for (const reply of replies) {
      const request = this.#pending.get(reply[0]);
      if (!request?.sent) continue;
      this.#inflight--;
      if (reply[1]) this.#settle(request, null, reply[2]);
      else this.#settle(request, this.#errors.decode(reply[2]));
    }
    this.#afterSettle();
    if (this.#outbox.length > 0) this.#scheduleFlush();
  }

  #refuse(op: string, error: Error): Promise<never> {
    if (this.#onSettle) {
      try {
        this.#onSettle(op, NaN, error);
      } catch {
        /* a hook never stops a call from settling */
      }
    }
    return Promise.reject(error);
  }

  #settle(request: PendingRequest, error: Error | null, value?: unknown): void {
    if (request.settled) return;
    request.settled = true;
    this.#pending.delete(request.id);
    if (request.crashes > 0) this.#suspects--;
    if (this.#onSettle) {
      try {
        this.#onSettle(request.op, request.deadline - this.#timeoutMs, error);
      } catch {
        /* a hook never stops a call from settling */
      }
    }
    if (error) request.reject(error);
    else request.resolve(value);
  }

  #afterSettle(): void {
    if (this.#pending.size > 0) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #armTimer(ms: number): void {
    // A deadline past the timer limit is re-checked when the clamped timer fires.
    this.#timer = setTimeout(() => this.#onTimer(), safeDelay(ms));
  }

  #onTimer(): void {
    this.#timer = null;
    const now = performance.now();
    for (const request of this.#pending.values()) {
      if (request.deadline > now) {
        this.#armTimer(request.deadline - now);
        return;
      }
      if (request.sent) this.#inflight--;
      this.#settle(request, this.#errors.timeout(request.op, this.#timeoutMs));
    }
    this.#afterSettle();
    // A timed-out suspect may have been the last one: the rest can batch again.
    if (this.#outbox.length > 0) this.#scheduleFlush();
  }
}
