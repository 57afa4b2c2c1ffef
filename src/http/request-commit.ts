import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionCommittedError, SessionHeadersSentError } from '../errors.ts';
import { asError, statusFor } from './failures.ts';
import { HeldResponse, respond, type HoldPolicy } from './held-response.ts';
import { Session, type ChangeKind, type SessionHost } from './session.ts';
import { beforeChange, commitRound, cookieHeader, forStatus, owesConfirmation, roundState, settleResend, type CommitContext, type RoundState } from './commit-round.ts';
import type { FrontDoor, Loaded } from './front-door.ts';

/**
 * What a front door does with a commit that failed while nothing was sent
 * yet: true when it took care of the response (Express hands the error to
 * the app's error middleware); false for the bare 500/503.
 */
export type CommitFailure = (error: Error, status: number, reset: () => void) => boolean;

const kDoor = Symbol('supervised-sessions.door');

/** One listener for every response: a write after end() is the handler's mistake, reported, never fatal. */
function onResponseError(this: ServerResponse & { [kDoor]?: FrontDoor }, error: Error): void {
  this[kDoor]?.onError(error, this.req);
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
  session!: Session;
  #held: HeldResponse | null = null;
  readonly #state: RoundState;
  /** A store call is in flight. */
  #busy = false;
  /** The first round began: a new id could no longer be chosen freely. */
  #began = false;
  #failed = false;
  readonly #onFailure: CommitFailure | null;

  constructor(ctx: CommitContext, req: IncomingMessage, res: ServerResponse, state: RoundState, onFailure: CommitFailure | null = null) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#state = state;
    this.#onFailure = onFailure;
  }

  /** A request's commit and its Session, through a front door. */
  static begin(door: FrontDoor, req: IncomingMessage, res: ServerResponse, loaded: Loaded, onFailure: CommitFailure | null = null): RequestCommit {
    const ctx = door.context(req);
    // A write after end() makes Node emit 'error' on the response, which kills
    // a process nobody listens on: it is the handler's mistake, reported.
    (res as ServerResponse & { [kDoor]?: FrontDoor })[kDoor] = door;
    res.on('error', onResponseError);
    const state = roundState(loaded.hadCookie, door.owesResend(loaded), loaded.stale);
    const commit = new RequestCommit(ctx, req, res, state, onFailure);
    commit.session = new Session(loaded.id, loaded.data, commit, loaded.owner, loaded.maxAge);
    // The sliding cookie is owed: the response waits for the commit, which
    // sends it only for a session still live then.
    if (state.resend) commit.#held = new HeldResponse(res, commit);
    return commit;
  }

  // ── SessionHost: may this change still be stored? ──────────────────────

  change(kind: ChangeKind, session: Session): void {
    const held = this.#held;
    const res = this.#res;
    if (held ? held.handlerEnded : res.writableEnded) {
      throw new SessionCommittedError(`session.${kind === 'data' ? 'set/delete/clear/setOwner' : kind === 'lifetime' ? 'setMaxAge' : kind}() after the response ended: the change could not be stored`);
    }
    // The response was already answered with a 5xx (or cut short): the
    // change is ignored, like the handler's later response calls; throwing
    // here would only kill a callback-style handler.
    if (this.#failed) return;
    const headersOut = held ? held.headersOut : res.headersSent;
    if (kind === 'renew' && (headersOut || this.#began)) {
      throw new SessionHeadersSentError('session.renew() after the response headers were sent or the commit began: the new id could not reach the client');
    }
    // A lifetime is its cookie's Max-Age too: stored without it, the browser would keep the old one.
    if (kind === 'lifetime' && headersOut && !this.#state.gone) {
      throw new SessionHeadersSentError('session.setMaxAge() after the response headers were sent: the cookie could not carry the new lifetime, so it was not stored');
    }
    // A login on a stale request makes its new session one to store.
    if (!this.#began) beforeChange(this.#state, kind);
    // The session is gone (dropped, expired, renewed elsewhere): ignored.
    if (this.#state.gone) return;
    if (kind === 'data' && session.id === null && !session.dropped && (held ? held.headersSent : res.headersSent) && !this.#busy) {
      throw new SessionHeadersSentError('a new session was changed after the response headers were sent: it cannot get its cookie, so it cannot be stored');
    }
    if (!held) this.#held = new HeldResponse(res, this);
  }

  // ── HoldPolicy ──────────────────────────────────────────────────────────

  mustHold(): boolean {
    return !this.#failed && (this.#busy || this.session.pending || owesConfirmation(this.session, this.#state));
  }

  held(): void {
    if (!this.#busy) void this.#pump();
  }

  beforeHeaders(): void {
    const next = cookieHeader(this.#res.getHeader('set-cookie'), this.#state.cookie);
    if (next !== null) this.#held!.setHeader('Set-Cookie', next);
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
      for (;;) {
        const work = this.session.take();
        // An error page (5xx) stores no data changes; drop() and renew() apply (commit-round.ts).
        if (work !== null) await commitRound(forStatus(work, this.#res.statusCode), this.session, this.#ctx, this.#state);
        else if (this.#state.resend) await settleResend(this.session, this.#ctx, this.#state, (error) => this.#ctx.onError(error, this.#req));
        else break;
        if (this.#failed) return;
      }
      this.#busy = false;
      this.#held!.flush();
    } catch (error) {
      this.#busy = false;
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    const err = asError(error);
    const held = this.#held!;
    // Nothing sent yet: a front door may answer the failure its own way.
    const status = statusFor(error);
    let answered = false;
    if (this.#onFailure !== null && !held.headersSent) {
      try {
        answered = this.#onFailure(err, status, () => held.reset(status));
      } catch (thrown) {
        this.#ctx.onError(asError(thrown), this.#req);
        answered = false;
      }
    }
    if (!answered) held.fail(status, err);
    this.#ctx.onError(err, this.#req);
  }

  /**
   * A handler that threw or rejected: a 500 if it had not ended its
   * response. Its data changes are not stored; a drop() or renew() it made
   * still applies, and the 500 carries that cookie.
   */
  handlerFailed(error: unknown): void {
    const err = asError(error);
    const held = this.#held;
    if (!this.#failed && !(held ? held.handlerEnded : this.#res.writableEnded)) {
      if (held && !held.headersOut && this.session.idChangePending) {
        // The 500 goes out through the held response, after the rounds.
        held.answer(500);
        this.#ctx.onError(err, this.#req);
        return;
      }
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
