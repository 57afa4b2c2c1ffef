import type { MessagePort } from 'node:worker_threads';
import { toWire, type WireError } from '../errors.ts';

/** One request on the wire: `[id, op, args]`. */
export type WireRequest = [id: number, op: string, args: unknown];
/** One reply on the wire: `[id, true, value]` or `[id, false, { code, message }]`. */
export type WireReply = [id: number, ok: true, value: unknown] | [id: number, ok: false, error: WireError];

export interface Request {
  op: string;
  args: unknown;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A batch's replies, in its order: errors cross as { code, message } data. */
function toReplies(batch: WireRequest[], outcomes: Outcome[]): WireReply[] {
  const replies: WireReply[] = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const outcome = outcomes[i];
    replies[i] = outcome.ok ? [batch[i][0], true, outcome.value] : [batch[i][0], false, toWire(outcome.error)];
  }
  return replies;
}

/**
 * The actor side of the mailbox: every incoming message is a batch, handed
 * whole to `handleBatch` (the store runs it as one transaction), and its
 * replies leave as one message; `afterReplies` then runs what the replies
 * did not have to wait for. A throw from `handleBatch` itself is not a
 * per-request failure: it is left uncaught so the actor crashes and the
 * supervisor restarts it with fresh state.
 */
export function serveMailbox(port: MessagePort, handleBatch: (requests: Request[]) => Outcome[], afterReplies?: () => void): void {
  port.on('message', (batch: WireRequest[]) => {
    const requests = batch.map(([, op, args]) => ({ op, args }));
    port.postMessage(toReplies(batch, handleBatch(requests)));
    // Work the replies need not wait for (the store's deferred touches).
    afterReplies?.();
  });
}

/**
 * A second lane for reads, for an engine whose connection pipelines: while a
 * batch is in flight, a read of a session no waiting or running batch touches
 * (nor any write on many sessions) need not wait for it.
 */
export interface ReadLane {
  /** The sessions a call is on, or null for a call on many (an owner's, the whole store's). */
  sessionsOf(request: Request): readonly string[] | null;
  /** Whether a call only reads. */
  reads(request: Request): boolean;
  /** Runs a batch of reads; rejects only when the actor is unsound, as handleBatch. */
  run(requests: Request[]): Promise<Outcome[]>;
}

function count(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}

/**
 * The mailbox for an asynchronous actor (a store on a network connection):
 * one batch at a time, and the messages that arrive while a batch is in
 * flight are merged into the next one, so the busier the store, the more
 * calls share one transaction (group commit). Each batch's replies leave as
 * one message. A rejection of `handleBatch` is a fault of the actor itself:
 * it is rethrown outside the promise chain, so the thread crashes and the
 * supervisor restarts it.
 *
 * With a `readLane`, a read that arrives while a batch is in flight goes on
 * the read lane (one read batch at a time, merged the same way) when no
 * waiting or running batch holds a call on its session or a write on many
 * sessions. Calls on one session keep their order: a read of a session a
 * batch writes waits for that batch, and a batch that writes a session a read
 * batch is reading waits for that read batch first.
 */
export function serveMailboxAsync(
  port: MessagePort,
  handleBatch: (requests: Request[]) => Promise<Outcome[]>,
  afterReplies?: () => Promise<void>,
  readLane?: ReadLane,
): void {
  let queued: WireRequest[] = [];
  let running: Promise<void> | null = null;
  /** The sessions of the calls queued or running on the batch lane, and how many of its calls write many sessions. */
  const batchSessions = new Map<string, number>();
  let batchWidewrites = 0;
  /** The sessions of the reads queued or running on the read lane. */
  const readSessions = new Map<string, number>();
  let readQueued: WireRequest[] = [];
  let reading: Promise<void> | null = null;
  /** Batches waiting for a read batch to reply (collides). */
  let readWaiters: Array<() => void> = [];
  const readReplied = () => new Promise<void>((resolve) => readWaiters.push(resolve));

  const crash = (error: unknown) => {
    setImmediate(() => {
      throw error;
    });
  };
  const toRequest = ([, op, args]: WireRequest): Request => ({ op, args });

  /** Counts a call in (by 1) or out (by -1) of the batch lane. */
  const onBatchLane = (request: Request, by: number) => {
    if (!readLane) return;
    const sessions = readLane.sessionsOf(request);
    if (sessions !== null) for (const session of sessions) count(batchSessions, session, by);
    else if (!readLane.reads(request)) batchWidewrites += by;
  };

  /**
   * Whether the batch holds a call on a session the read lane is reading, or
   * a write on many sessions while it reads any: then it waits for the read
   * lane, so that calls on one session run in the order they were made.
   */
  const collides = (requests: Request[]): boolean => {
    if (!readLane || readSessions.size === 0) return false;
    for (const request of requests) {
      const sessions = readLane.sessionsOf(request);
      if (sessions === null) {
        if (!readLane.reads(request)) return true;
      } else if (sessions.some((session) => readSessions.has(session))) return true;
    }
    return false;
  };

  const drain = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued;
      queued = [];
      const requests = batch.map(toRequest);
      while (collides(requests)) await readReplied();
      port.postMessage(toReplies(batch, await handleBatch(requests)));
      for (const request of requests) onBatchLane(request, -1);
      // Work the replies need not wait for (the store's deferred touches).
      if (afterReplies) await afterReplies();
    }
  };

  const drainReads = async (): Promise<void> => {
    const lane = readLane!;
    while (readQueued.length > 0) {
      const batch = readQueued;
      readQueued = [];
      const requests = batch.map(toRequest);
      try {
        port.postMessage(toReplies(batch, await lane.run(requests)));
      } finally {
        for (const request of requests) count(readSessions, lane.sessionsOf(request)![0], -1);
        const waiters = readWaiters;
        readWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  };

  /** The session of a read that need not wait for the batch in flight, or null. */
  const mayRead = (request: Request): string | null => {
    if (!readLane || running === null || batchWidewrites > 0 || !readLane.reads(request)) return null;
    const sessions = readLane.sessionsOf(request);
    return sessions?.length === 1 && !batchSessions.has(sessions[0]) ? sessions[0] : null;
  };

  port.on('message', (batch: WireRequest[]) => {
    let reads = false;
    for (const wire of batch) {
      const request = toRequest(wire);
      const session = mayRead(request);
      if (session !== null) {
        count(readSessions, session, 1);
        readQueued.push(wire);
        reads = true;
        continue;
      }
      onBatchLane(request, 1);
      queued.push(wire);
    }
    if (reads && !reading) {
      reading = drainReads().then(() => {
        reading = null;
      }, crash);
    }
    if (running || queued.length === 0) return;
    running = drain().then(() => {
      running = null;
    }, crash);
  });
}
