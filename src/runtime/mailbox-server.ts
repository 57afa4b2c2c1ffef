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
 * The mailbox for an asynchronous actor (a store on a network connection):
 * one batch at a time, and the messages that arrive while a batch is in
 * flight are merged into the next one, so the busier the store, the more
 * calls share one transaction (group commit). Each batch's replies leave as
 * one message. A rejection of `handleBatch` is a fault of the actor itself:
 * it is rethrown outside the promise chain, so the thread crashes and the
 * supervisor restarts it.
 */
export function serveMailboxAsync(
  port: MessagePort,
  handleBatch: (requests: Request[]) => Promise<Outcome[]>,
  afterReplies?: () => Promise<void>,
): void {
  let queued: WireRequest[] = [];
  let running: Promise<void> | null = null;

  const drain = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued;
      queued = [];
      port.postMessage(toReplies(batch, await handleBatch(batch.map(([, op, args]) => ({ op, args })))));
      // Work the replies need not wait for (the store's deferred touches).
      if (afterReplies) await afterReplies();
    }
  };

  port.on('message', (batch: WireRequest[]) => {
    for (const request of batch) queued.push(request);
    if (running) return;
    running = drain().then(
      () => {
        running = null;
      },
      (error: unknown) => {
        setImmediate(() => {
          throw error;
        });
      },
    );
  });
}
