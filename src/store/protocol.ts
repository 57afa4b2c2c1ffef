// The store protocol: every call the mailbox client (session-store.ts) sends
// to an engine's store actor, with its arguments and its reply — one typed
// module used on both sides of the port. On the wire a call is its op and a
// positional tuple (an array clones cheaper than an object); a trailing
// argument left out means "unchanged" (an owner or a lifetime that does not
// change never crosses). Session ids are the caller's: every call can be
// replayed after a crash (docs/architecture.md, "The protocol").
import type { Renewed } from './renewed.ts';

type Sid = string;
/** Session data as JSON text: serialized once, on the caller's side. */
type Json = string;
/** The owner to store; null takes it away. */
type Owner = string | null;
/** A lifetime of the session's own in ms; null: the app's maxAge. */
type MaxAgeMs = number | null;

/** A renew that is a login: its data changes (or a whole replacement), owner and lifetime in the same statement. */
export type RenewWithChanges = [
  sid: Sid,
  next: Sid,
  set: Json | null,
  unset: string[] | null,
  replace: Json | null,
  owner?: Owner,
  maxAgeMs?: MaxAgeMs,
];

export interface StoreCalls {
  /** The session's data (and its sliding touch), or null. */
  get: { args: [sid: Sid]; reply: Json | null };
  /**
   * What a front door loads: data, owner, whether this read renewed the
   * timestamp, own lifetime. `still`: no touch (the touch option).
   */
  load: {
    args: [sid: Sid, still?: true];
    reply: [data: Json, owner: string | null, touched: boolean, maxAgeMs: MaxAgeMs] | Renewed | null;
  };
  /** Whether the session is live now (a read, no touch). */
  alive: { args: [sid: Sid]; reply: boolean | Renewed };
  /** A new session under the caller's new id; resolves with that id. */
  create: { args: [sid: Sid, data: Json, owner: Owner, maxAgeMs: MaxAgeMs]; reply: Sid };
  /** Replaces a live session's data; null when it is gone. */
  put: { args: [sid: Sid, data: Json, owner?: Owner, maxAgeMs?: MaxAgeMs]; reply: Sid | Renewed | null };
  /** Sets and removes top-level keys of a live session; false when it is gone. */
  patch: { args: [sid: Sid, set: Json | null, unset: string[] | null, owner?: Owner, maxAgeMs?: MaxAgeMs]; reply: boolean | Renewed };
  /** The owner's live sessions: [handle, createdAt, touchedAt, expiresAt, data]. */
  sessionsOf: {
    args: [owner: string];
    reply: Array<[handle: string, createdAt: number, touchedAt: number, expiresAt: number, data: Json]>;
  };
  /** Ends the owner's session with that handle's digest; whether it was live. */
  revoke: { args: [owner: string, digest: Uint8Array]; reply: boolean };
  /**
   * Ends every session of the owner but `except`; how many were live.
   * `guarded` (revokeOtherSessions): only when `except` is a live session of
   * that owner, checked in the same transaction; null when it is not.
   */
  revokeAll: { args: [owner: string, except: Sid | null, guarded?: boolean]; reply: number | null };
  /** Moves a live session to the caller's next id, with the changes of a login; the new id, or null when gone. */
  renew: { args: [sid: Sid, next: Sid] | RenewWithChanges; reply: Sid | Renewed | null };
  delete: { args: [sid: Sid]; reply: Renewed | null };
  /** Live sessions. */
  count: { args: []; reply: number };
  /** express-session's set: a key it chose, stored whole; remainingMs: its cookie's time left (null: maxAge). */
  upsert: { args: [key: string, data: Json, remainingMs: number | null]; reply: null };
  /** express-session's touch: the expiry (and the stored cookie) moved. */
  touchKey: { args: [key: string, remainingMs: number | null, cookie: Json | null]; reply: null };
  /** Every session deleted. */
  clear: { args: []; reply: null };
  /** Every live session's data. */
  all: { args: []; reply: Json[] };
  /** At most `limit` dead sessions deleted by the store actor itself (a ':memory:' database); how many. */
  sweep: { args: [limit: number]; reply: number };
}

export type Op = keyof StoreCalls;
export type Args<K extends Op> = StoreCalls[K]['args'];
export type Reply<K extends Op> = StoreCalls[K]['reply'];

/** One call as an engine receives it: narrowing on `op` types `args`. */
export type StoreCall = { [K in Op]: { op: K; args: Args<K> } }[Op];

/** The owner a call gives its session (create, put, patch, renew with an owner), or undefined. */
export function ownerGiven(call: StoreCall): string | undefined {
  const owner =
    call.op === 'create' || call.op === 'put'
      ? call.args[2]
      : call.op === 'patch'
        ? call.args[3]
        : call.op === 'renew'
          ? (call.args as RenewWithChanges)[5]
          : undefined;
  return typeof owner === 'string' ? owner : undefined;
}

/** The calls that may write (an engine takes its write lock for a batch holding one). */
export const WRITES: ReadonlySet<Op> = new Set<Op>([
  'create',
  'put',
  'patch',
  'renew',
  'delete',
  'sweep',
  'revoke',
  'revokeAll',
  'upsert',
  'clear',
]);

/** The calls on one session, named by their first argument (a session id, or express-session's key). */
const ONE_SESSION: ReadonlySet<string> = new Set<Op>([
  'get',
  'load',
  'alive',
  'create',
  'put',
  'patch',
  'renew',
  'delete',
  'upsert',
  'touchKey',
]);

/** The calls that only read (their sliding touch aside): the calls a read lane may take. */
export const READS: ReadonlySet<string> = new Set<Op>(['get', 'load', 'alive', 'count', 'sessionsOf', 'all']);

/**
 * The sessions a call is on: its own (a renew's, both ids), or null for a
 * call on many or on none — an owner's, the whole store's, and a write that
 * gives an owner (under the owner cap it may end the owner's other sessions).
 */
export function sessionsOf(call: { op: string; args: unknown }): readonly string[] | null {
  if (!ONE_SESSION.has(call.op)) return null;
  const args = call.args as unknown[] | undefined;
  if (!Array.isArray(args) || typeof args[0] !== 'string') return null;
  if (!READS.has(call.op) && ownerGiven(call as StoreCall) !== undefined) return null;
  if (call.op === 'renew' && typeof args[1] === 'string') return [args[0], args[1]];
  return [args[0]];
}
