// The commit core: the rules every front door commits a session by — which
// change is still accepted and which throws, the rounds that hand the changes
// to the store, what an error response stores, the cookie each outcome gets.
// A front door drives it (request-commit.ts for node's response, fastify.ts
// in onSend, web.ts for a fetch handler's Response) and says only what its
// response has done so far.
import type { CommitStore } from '../store/session-store.ts';
import { Session, type ChangeKind, type PendingWork, type SessionHost } from './session.ts';
import { RENEWED } from '../store/renewed.ts';
import { SessionCommittedError, SessionHeadersSentError } from '../errors.ts';
import type { SessionData } from '../store/json-value.ts';

/** What a request brings: its live session (if any), and whether it sent our cookie at all. */
export interface Loaded {
  id: string | null;
  data: SessionData | null;
  owner: string | null;
  hadCookie: boolean;
  /** The load renewed the sliding timestamp: the cookie's expiry moved. */
  touched: boolean;
  /** The cookie names an id another request renewed: this request's session is never stored. */
  stale: boolean;
  /** The session's own lifetime in seconds; null: the app's maxAge. */
  maxAge: number | null;
}

/** What every request of one handler shares. */
export interface CommitContext<Req = unknown> {
  /** The store, with replies that tell "renewed" from "gone". */
  store: CommitStore;
  onError(error: Error, req: Req): void;
  /**
   * The Set-Cookie line for an id; `maxAge`, the session's own lifetime in
   * seconds, is its Max-Age (null or absent: cookie.maxAge, if any).
   */
  setCookie(id: string, maxAge?: number | null): string;
  /** The Set-Cookie line that expires the cookie. */
  expiredCookie: string;
  /**
   * Whether a session's cookie slides: 'relative' timestamps and a
   * persistent cookie (cookie.maxAge, or `maxAge`, a lifetime of its own).
   */
  slides(maxAge: number | null): boolean;
}

/** What the rounds of one request's commit decide, kept between rounds. */
export interface RoundState {
  /** The Set-Cookie to send with the headers, as decided so far. */
  cookie: string | null;
  /** The session was dropped, found gone or renewed by another request: never recreate it, ignore later changes. */
  gone: boolean;
  /** The request came with our cookie (a drop then expires it). */
  readonly hadCookie: boolean;
  /**
   * The sliding cookie is owed: this request's load renewed the stored
   * timestamp (cookie.maxAge with 'relative'). It goes out only once the
   * session is known to be live at commit (a round stored under its id, or
   * `alive` says so): a re-send never sends an id another request renewed
   * or dropped meanwhile.
   */
  resend: boolean;
  /** A round stored under the session's id: it was live then. */
  confirmed: boolean;
  /**
   * The request's cookie names an id another request renewed moments ago
   * (it was sent before the browser had the login's response): its session
   * is a new one that is never stored and gets no cookie — unless the
   * handler logs in (`renew()`), which stores it as any new session.
   */
  stale: boolean;
  /**
   * An error page's commit discarded a setOwner() of this request: whose
   * other sessions a revokeOtherSessions() meant is unclear, so it ends none
   * (never the previous owner's on a failed login as someone else).
   */
  ownerDiscarded: boolean;
}

/** A new round state for a request. */
export function roundState(hadCookie: boolean, resend: boolean, stale = false): RoundState {
  return { cookie: null, gone: stale, hadCookie, resend, confirmed: false, stale, ownerDiscarded: false };
}

/** A change is about to be made: a login on a stale request makes its new session one to store. */
export function beforeChange(state: RoundState, kind: ChangeKind): void {
  if (kind === 'renew' && state.stale) {
    state.stale = false;
    state.gone = false;
  }
}

/**
 * The one rule of every front door for a response that goes out as an error
 * (status 5xx, which a handler that throws gets): its data changes (set,
 * delete, clear, setOwner) are not stored; drop(), renew() and
 * revokeOtherSessions() still apply — a logout or the fixation defence never
 * depends on the page that follows (a revokeOtherSessions() after a
 * setOwner() so discarded ends nothing: RoundState.ownerDiscarded).
 */
export function forStatus(work: PendingWork, status: number): PendingWork {
  if (status < 500) return work;
  return {
    drop: work.drop,
    renew: work.renew,
    cleared: false,
    set: {},
    unset: [],
    data: work.data === null ? null : {},
    revokeOthers: work.revokeOthers,
  };
}

/**
 * The session went while the request ran. Dropped or expired: the cookie is
 * expired (`cookie` the expired line), the handler's status kept. Renewed by
 * another request (a login): no cookie at all (`null`) — the browser holds the
 * new id already, and an expiry or the old id would log it out.
 */
function gone(session: Session, state: RoundState, cookie: string | null): void {
  state.gone = true;
  session.committed(null);
  state.cookie = cookie;
}

/**
 * One round of a commit: the changes taken from the session, handed to the
 * store as ONE operation — a login (renew + setOwner + data) or a clear()
 * with setOwner(null) never lands half-done — and the cookie decided.
 * Shared by every front door (createHandler and Express through
 * RequestCommit, Fastify in its onSend hook).
 */
export async function commitRound(work: PendingWork, session: Session, ctx: CommitContext, state: RoundState): Promise<void> {
  // Gone (dropped, expired, revoked, renewed elsewhere): nothing more is stored for it.
  if (state.gone) return;
  // Log out everywhere: the others end first, while this session still vouches for the request.
  if (work.revokeOthers && work.drop) await revokeOthers(session, ctx, state);
  await storeRound(work, session, ctx, state);
  // Log out other devices: once this round stored the session (a login's new id, a fresh device's).
  if (work.revokeOthers && !work.drop) await revokeOthers(session, ctx, state);
}

/**
 * revokeOtherSessions(), in the round that commits it: every other session
 * of the owner the store holds for this session ends — in one transaction
 * that first checks this session is still a live session of that owner, so
 * a session revoked, dropped or renewed elsewhere meanwhile ends none.
 */
async function revokeOthers(session: Session, ctx: CommitContext, state: RoundState): Promise<void> {
  const owner = session.storedOwner;
  if (state.gone || session.id === null || owner === null || state.ownerDiscarded) return;
  await ctx.store.revokeOthers(owner, session.id);
}

/** The store call of a round, and the cookie it decides. */
async function storeRound(work: PendingWork, session: Session, ctx: CommitContext, state: RoundState): Promise<void> {
  const { store, setCookie, expiredCookie } = ctx;
  const id = session.id;
  const lost = () => gone(session, state, expiredCookie);
  const renewed = () => gone(session, state, null);
  if (work.drop) {
    const result = id === null ? null : await store.delete(id);
    session.committed(null);
    state.gone = true;
    // A cookie the client holds is expired; one only made in this request never went out.
    state.cookie = result === RENEWED ? null : state.hadCookie ? expiredCookie : null;
    return;
  }
  if (id === null) {
    // A new, empty session without an owner or a lifetime of its own is not worth storing, and gets no cookie.
    const options = {
      ...(typeof work.owner === 'string' ? { owner: work.owner } : {}),
      ...(typeof work.maxAge === 'number' ? { maxAge: work.maxAge } : {}),
    };
    const data = work.data!;
    if (Object.keys(data).length === 0 && options.owner === undefined && options.maxAge === undefined) return;
    const created = (await store.put(null, data, options)) as string;
    session.committed(created);
    session.ownerStored(options.owner ?? null);
    session.maxAgeStored(options.maxAge ?? null);
    state.cookie = setCookie(created, session.storedMaxAge);
    state.resend = false;
    return;
  }
  // The owner and the lifetime go to the store only when they change.
  const extras = {
    ...(work.owner !== undefined ? { owner: work.owner } : {}),
    ...(work.maxAge !== undefined ? { maxAge: work.maxAge } : {}),
  };
  if (work.renew) {
    const changes = work.cleared ? { replace: work.data!, ...extras } : { set: work.set, unset: work.unset, ...extras };
    const next = await store.renew(id, changes);
    if (next === RENEWED) return renewed();
    if (next === null) return lost();
    session.committed(next);
    session.ownerStored(work.owner);
    session.maxAgeStored(work.maxAge);
    state.cookie = setCookie(next, session.storedMaxAge);
    state.resend = false;
    return;
  }
  let result: unknown = true;
  if (work.cleared) result = await store.put(id, work.data!, extras);
  else if (work.unset.length > 0 || Object.keys(work.set).length > 0 || work.owner !== undefined || work.maxAge !== undefined) {
    result = await store.patch(id, { set: work.set, unset: work.unset, ...extras });
  } else return;
  if (result === RENEWED) return renewed();
  if (result === null || result === false) return lost();
  state.confirmed = true;
  session.ownerStored(work.owner);
  if (work.maxAge !== undefined) session.maxAgeStored(work.maxAge);
  // The stored lifetime changed, or a put (clear()) renewed a sliding
  // timestamp: the cookie carries the expiry the server now holds (a
  // persistent cookie, or back to the app's cookie.maxAge), and no re-send
  // is owed.
  if (work.maxAge !== undefined || (work.cleared && ctx.slides(session.storedMaxAge))) {
    state.cookie = setCookie(id, session.storedMaxAge);
    state.resend = false;
  }
}

/** Whether the sliding re-send is still to be settled (the response waits for it). */
export function owesConfirmation(session: Session, state: RoundState): boolean {
  return state.resend && !state.gone && session.id !== null;
}

/**
 * After the last round: the sliding cookie, when owed, for a session still
 * live now (one `alive` read when no round stored under its id).
 */
export async function settleResend(session: Session, ctx: CommitContext, state: RoundState, report: (error: Error) => void): Promise<void> {
  if (!state.resend) return;
  // Settled once: the response no longer waits for it.
  state.resend = false;
  if (state.gone || session.id === null) return;
  if (!state.confirmed) {
    // The re-send is a courtesy of a read: should the check fail, the page
    // still goes out as it is, without it (the browser keeps its cookie),
    // and onError is told (no 5xx stands behind it).
    const alive = await ctx.store.alive(session.id).catch((error: unknown) => {
      report(error instanceof Error ? error : new Error(String(error)));
      return 'failed' as const;
    });
    if (alive === 'failed') return;
    if (alive === RENEWED) return gone(session, state, null);
    if (alive !== true) return gone(session, state, ctx.expiredCookie);
  }
  state.cookie = ctx.setCookie(session.id, session.storedMaxAge);
}

/**
 * The Set-Cookie header as it should go out: what the handler set, with the
 * decided cookie added unless it is already there.
 */
export function cookieHeader(current: number | string | string[] | undefined, cookie: string | null): string[] | null {
  if (cookie === null) return null;
  const list = current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
  return list.includes(cookie) ? null : [...list, cookie];
}

/** What a front door's response has done so far, as the change rules read it. */
export interface ResponseSide {
  /** The handler ended its response: no change can be stored any more. */
  ended(): boolean;
  /** The status line and headers are written (or decided): no new cookie can go out. */
  headersOut(): boolean;
  /** The headers reached the socket. */
  headersSent(): boolean;
}

const change = (kind: ChangeKind) =>
  kind === 'data' ? 'set/delete/clear/setOwner' : kind === 'lifetime' ? 'setMaxAge' : kind === 'revoke' ? 'revokeOtherSessions' : kind;

/**
 * One request's commit, whatever the front door: the Session, the rounds'
 * state, and the rules. The front door is the Session's host (it may start
 * holding its response on a change) and asks `admit` first.
 */
export class CommitCore<Req = unknown> {
  readonly session: Session;
  readonly state: RoundState;
  readonly ctx: CommitContext<Req>;
  readonly req: Req;
  /** A store call is in flight. */
  busy = false;
  /** The first round began: a new id could no longer be chosen freely. */
  began = false;
  /** The commit failed (or the response was answered with an error): later changes are ignored. */
  failed = false;

  constructor(ctx: CommitContext<Req>, req: Req, loaded: Loaded, resend: boolean, host: SessionHost) {
    this.ctx = ctx;
    this.req = req;
    this.state = roundState(loaded.hadCookie, resend, loaded.stale);
    this.session = new Session(loaded.id, loaded.data, host, loaded.owner, loaded.maxAge);
  }

  /**
   * The change rules. Throws when the change could never be stored (after
   * the response ended; a new id or lifetime once the headers are out);
   * returns false when it is to be ignored (the commit failed, the session is
   * gone), true when it will be stored.
   */
  admit(kind: ChangeKind, response: ResponseSide): boolean {
    if (response.ended()) {
      throw new SessionCommittedError(`session.${change(kind)}() after the response ended: the change could not be stored`);
    }
    // The response was already answered with a 5xx (or cut short): the
    // change is ignored, like the handler's later response calls; throwing
    // here would only kill a callback-style handler.
    if (this.failed) return false;
    const headersOut = response.headersOut();
    if (kind === 'renew' && (headersOut || this.began)) {
      throw new SessionHeadersSentError(
        'session.renew() after the response headers were sent or the commit began: the new id could not reach the client',
      );
    }
    // A lifetime is its cookie's Max-Age too: stored without it, the browser would keep the old one.
    if (kind === 'lifetime' && headersOut && !this.state.gone) {
      throw new SessionHeadersSentError(
        'session.setMaxAge() after the response headers were sent: the cookie could not carry the new lifetime, so it was not stored',
      );
    }
    // A login on a stale request makes its new session one to store.
    if (!this.began) beforeChange(this.state, kind);
    // The session is gone (dropped, expired, renewed elsewhere): ignored.
    if (this.state.gone) return false;
    if (kind === 'data' && this.session.id === null && !this.session.dropped && response.headersSent() && !this.busy) {
      throw new SessionHeadersSentError(
        'a new session was changed after the response headers were sent: it cannot get its cookie, so it cannot be stored',
      );
    }
    return true;
  }

  /** The response must wait: changes pending, a store call in flight, or the sliding cookie not yet settled. */
  mustWait(): boolean {
    return !this.failed && (this.busy || this.session.pending || owesConfirmation(this.session, this.state));
  }

  /**
   * Rounds until nothing is pending: each hands the store every change made
   * so far (an error response, `status()` 5xx, stores no data changes), then
   * the sliding cookie is settled. Rejects with the store's error.
   */
  async rounds(status: () => number): Promise<void> {
    this.busy = true;
    this.began = true;
    try {
      for (;;) {
        const work = this.session.take();
        if (work !== null) {
          const applied = forStatus(work, status());
          if (work.owner !== undefined && applied.owner === undefined) this.state.ownerDiscarded = true;
          await commitRound(applied, this.session, this.ctx, this.state);
        } else if (this.state.resend) await settleResend(this.session, this.ctx, this.state, (error) => this.report(error));
        else break;
        if (this.failed) return;
      }
    } finally {
      this.busy = false;
    }
  }

  /** The Set-Cookie header to send, given the one the handler set (null: leave it as it is). */
  cookieHeader(current: number | string | string[] | undefined): string[] | null {
    return cookieHeader(current, this.state.cookie);
  }

  report(error: Error): void {
    this.ctx.onError(error, this.req);
  }
}

/**
 * The commit of a front door that sends nothing before its commit is done —
 * Fastify (the rounds run in onSend, the reply is written after it) and a
 * fetch handler's Response (handed back after the rounds): no header is ever
 * out while a change can still be made, so nothing is held.
 */
export class DeferredCommit<Req = unknown> implements SessionHost, ResponseSide {
  readonly core: CommitCore<Req>;
  phase: 'open' | 'committing' | 'done' | 'failed' = 'open';

  constructor(ctx: CommitContext<Req>, req: Req, loaded: Loaded, resend: boolean) {
    this.core = new CommitCore(ctx, req, loaded, resend, this);
  }

  get session(): Session {
    return this.core.session;
  }

  ended(): boolean {
    return this.phase === 'done';
  }

  headersOut(): boolean {
    return false;
  }

  headersSent(): boolean {
    return false;
  }

  change(kind: ChangeKind, _session: Session): void {
    this.core.admit(kind, this);
  }

  /** The commit failed, or the response became an error one: later changes are ignored. */
  fail(): void {
    this.phase = 'failed';
    this.core.failed = true;
  }

  /** Every change stored, for a response of `status()` (a 5xx stores no data changes). Throws the store's error, failed. */
  async finish(status: () => number): Promise<void> {
    this.phase = 'committing';
    try {
      await this.core.rounds(status);
    } catch (error) {
      this.fail();
      throw error;
    }
    this.phase = 'done';
  }
}
