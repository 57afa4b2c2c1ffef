import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppStoppedError, SessionCommittedError, SessionHeadersSentError, StoreUnavailableError } from '../errors.ts';
import type { SessionStore } from '../store/session-store.ts';
import { HeldResponse, respond, type HoldPolicy } from './held-response.ts';
import type { ChangeKind, PendingWork, Session, SessionHost } from './session.ts';

/** What every request of one handler shares. */
export interface CommitContext {
  store: SessionStore;
  onError(error: Error, req: IncomingMessage): void;
  /** The Set-Cookie line for an id. */
  setCookie(id: string): string;
  /** The Set-Cookie line that expires the cookie. */
  expiredCookie: string;
}

/** 503 when the store cannot answer or the app is stopped; 500 for the rest. */
export function statusFor(error: unknown): number {
  return error instanceof StoreUnavailableError || error instanceof AppStoppedError ? 503 : 500;
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One request's session commit: the request-commit core.
 *
 * Nothing is wrapped until the session first changes, so a handler that only
 * reads its session pays for no wrapping. From the first change on, the
 * response is a HeldResponse: a call that would send something while changes
 * are pending or a store call is in flight is held, and the commit runs in
 * rounds — each round hands the store every change made so far, and changes
 * made while a round is in flight go into the next — until nothing is
 * pending; only then is the held part sent, with the Set-Cookie decided by
 * the rounds. So every change made before `end()` is stored before the
 * response completes, and no 2xx stands for a write that was not stored.
 */
export class RequestCommit implements SessionHost, HoldPolicy {
  readonly #ctx: CommitContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #hadCookie: boolean;
  /** The sliding re-send added before the handler ran, replaced if a round decides otherwise. */
  readonly #preset: string | null;
  session!: Session;
  #held: HeldResponse | null = null;
  /** The Set-Cookie to send with the headers, as decided so far. */
  #cookie: string | null;
  /** A store call is in flight. */
  #busy = false;
  /** The first round began: a new id could no longer be chosen freely. */
  #began = false;
  /** The session was dropped or found gone: never recreate it, ignore later changes. */
  #gone = false;
  #failed = false;

  constructor(ctx: CommitContext, req: IncomingMessage, res: ServerResponse, hadCookie: boolean, preset: string | null) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#hadCookie = hadCookie;
    this.#preset = preset;
    this.#cookie = preset;
  }

  // ── SessionHost: may this change still be stored? ──────────────────────

  change(kind: ChangeKind, session: Session): void {
    const held = this.#held;
    const res = this.#res;
    if (held ? held.handlerEnded : res.writableEnded) {
      throw new SessionCommittedError(`session.${kind === 'data' ? 'set/delete/clear/setOwner' : kind}() after the response ended: the change could not be stored`);
    }
    // The response was already answered with a 5xx (or cut short), or the
    // session is gone: the change is ignored, like the handler's later
    // response calls; throwing here would only kill a callback-style handler.
    if (this.#failed || this.#gone) return;
    const headersOut = held ? held.headersOut : res.headersSent;
    if (kind === 'renew' && (headersOut || this.#began)) {
      throw new SessionHeadersSentError('session.renew() after the response headers were sent or the commit began: the new id could not reach the client');
    }
    if (kind === 'data' && session.id === null && !session.dropped && (held ? held.headersSent : res.headersSent) && !this.#busy) {
      throw new SessionHeadersSentError('a new session was changed after the response headers were sent: it cannot get its cookie, so it cannot be stored');
    }
    if (!held) this.#held = new HeldResponse(res, this);
  }

  // ── HoldPolicy ──────────────────────────────────────────────────────────

  mustHold(): boolean {
    return !this.#failed && (this.#busy || this.session.pending);
  }

  held(): void {
    if (!this.#busy) void this.#pump();
  }

  beforeHeaders(): void {
    const held = this.#held!;
    const preset = this.#preset;
    const cookie = this.#cookie;
    const current = this.#res.getHeader('set-cookie');
    const list = current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
    let next = preset !== null && cookie !== preset ? list.filter((line) => line !== preset) : list;
    if (cookie !== null && !next.includes(cookie)) next = [...next, cookie];
    if (next === list) return;
    if (next.length > 0) held.setHeader('Set-Cookie', next);
    else held.removeHeader('Set-Cookie');
  }

  replayFailed(error: Error): void {
    this.#failed = true;
    this.#res.destroy(error);
    this.#ctx.onError(error, this.#req);
  }

  // ── The rounds ──────────────────────────────────────────────────────────

  async #pump(): Promise<void> {
    this.#busy = true;
    this.#began = true;
    try {
      for (let work = this.session.take(); work !== null; work = this.session.take()) {
        // Gone (dropped, expired, revoked): nothing more is stored for it.
        if (!this.#gone) await this.#round(work);
        if (this.#failed) return;
      }
      this.#busy = false;
      this.#held!.flush();
    } catch (error) {
      this.#busy = false;
      this.#fail(error);
    }
  }

  async #round(work: PendingWork): Promise<void> {
    const { store, setCookie, expiredCookie } = this.#ctx;
    const session = this.session;
    const id = session.id;
    if (work.drop) {
      if (id !== null) await store.delete(id);
      session.committed(null);
      this.#gone = true;
      // A cookie the client holds is expired; one only made in this request never went out.
      this.#cookie = this.#hadCookie ? expiredCookie : null;
      return;
    }
    const owner = typeof work.owner === 'string' ? { owner: work.owner } : undefined;
    if (id === null) {
      // A new, empty session without an owner is not worth storing, and gets no cookie.
      const data = work.data!;
      if (Object.keys(data).length === 0 && owner === undefined) return;
      const created = (await store.put(null, data, owner))!;
      session.committed(created);
      this.#cookie = setCookie(created);
      return;
    }
    // Each round is one store operation: a login (renew + setOwner + data)
    // or a clear() with setOwner(null) never lands half-done.
    const ownerChange = work.owner !== undefined ? { owner: work.owner } : {};
    if (work.renew) {
      const changes = work.cleared ? { replace: work.data!, ...ownerChange } : { set: work.set, unset: work.unset, ...ownerChange };
      const next = await store.renew(id, changes);
      if (next === null) return this.#lost();
      session.committed(next);
      this.#cookie = setCookie(next);
    } else if (work.cleared) {
      if ((await store.put(id, work.data!, ownerChange)) === null) return this.#lost();
    } else if (work.unset.length > 0 || Object.keys(work.set).length > 0 || work.owner !== undefined) {
      if (!(await store.patch(id, { set: work.set, unset: work.unset, ...ownerChange }))) return this.#lost();
    }
  }

  /** Dropped or expired while the request ran: expire the cookie, keep the handler's status. */
  #lost(): void {
    this.#gone = true;
    this.session.committed(null);
    this.#cookie = this.#ctx.expiredCookie;
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    const err = asError(error);
    this.#held!.fail(statusFor(error), err);
    this.#ctx.onError(err, this.#req);
  }

  /** A handler that threw or rejected: a 500 if it had not ended its response; nothing more is committed. */
  handlerFailed(error: unknown): void {
    const err = asError(error);
    const held = this.#held;
    if (!this.#failed && !(held ? held.handlerEnded : this.#res.writableEnded)) {
      this.#failed = true;
      if (held) {
        held.fail(500, err);
      } else if (this.#res.headersSent) {
        this.#res.destroy(err);
      } else {
        respond(this.#res, 500);
      }
    }
    this.#ctx.onError(err, this.#req);
  }
}
