import type { IncomingMessage, ServerResponse } from 'node:http';
import { asError, statusFor } from './failures.ts';
import { HeldResponse, respond, type HoldPolicy } from './held-response.ts';
import type { ChangeKind, Session, SessionHost } from './session.ts';
import { CommitCore, type ResponseSide } from './commit-core.ts';
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
 * One request's session commit on node's response: the commit core
 * (commit-core.ts) driven through a held response.
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
export class RequestCommit implements SessionHost, HoldPolicy, ResponseSide {
  readonly #core: CommitCore<IncomingMessage>;
  readonly #res: ServerResponse;
  #held: HeldResponse | null = null;
  readonly #onFailure: CommitFailure | null;

  constructor(door: FrontDoor, req: IncomingMessage, res: ServerResponse, loaded: Loaded, onFailure: CommitFailure | null) {
    this.#res = res;
    this.#onFailure = onFailure;
    this.#core = new CommitCore(door.context(req), req, loaded, door.owesResend(loaded), this);
  }

  get session(): Session {
    return this.#core.session;
  }

  /** A request's commit and its Session, through a front door. */
  static begin(
    door: FrontDoor,
    req: IncomingMessage,
    res: ServerResponse,
    loaded: Loaded,
    onFailure: CommitFailure | null = null,
  ): RequestCommit {
    // A write after end() makes Node emit 'error' on the response, which kills
    // a process nobody listens on: it is the handler's mistake, reported.
    (res as ServerResponse & { [kDoor]?: FrontDoor })[kDoor] = door;
    res.on('error', onResponseError);
    const commit = new RequestCommit(door, req, res, loaded, onFailure);
    // The sliding cookie is owed: the response waits for the commit, which
    // sends it only for a session still live then.
    if (commit.#core.state.resend) commit.#held = new HeldResponse(res, commit);
    return commit;
  }

  // ── ResponseSide: what the response has done so far ────────────────────

  ended(): boolean {
    return this.#held ? this.#held.handlerEnded : this.#res.writableEnded;
  }

  headersOut(): boolean {
    return this.#held ? this.#held.headersOut : this.#res.headersSent;
  }

  headersSent(): boolean {
    return this.#held ? this.#held.headersSent : this.#res.headersSent;
  }

  // ── SessionHost: may this change still be stored? ──────────────────────

  change(kind: ChangeKind, _session: Session): void {
    if (this.#core.admit(kind, this) && !this.#held) this.#held = new HeldResponse(this.#res, this);
  }

  // ── HoldPolicy ──────────────────────────────────────────────────────────

  mustHold(): boolean {
    return this.#core.mustWait();
  }

  held(): void {
    if (!this.#core.busy) void this.#pump();
  }

  beforeHeaders(): void {
    const next = this.#core.cookieHeader(this.#res.getHeader('set-cookie'));
    if (next !== null) this.#held!.setHeader('Set-Cookie', next);
  }

  replayFailed(error: Error): void {
    this.#core.failed = true;
    this.#res.destroy(error);
    this.#core.report(error);
  }

  // ── The rounds ──────────────────────────────────────────────────────────

  async #pump(): Promise<void> {
    try {
      await this.#core.rounds(() => this.#res.statusCode);
      if (this.#core.failed) return;
      this.#held!.flush();
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    const core = this.#core;
    // Already answered (the handler threw while a round was in flight): the
    // round's own failure — a revokeOtherSessions() that could not be made —
    // is still told to onError.
    if (core.failed) {
      core.report(asError(error));
      return;
    }
    core.failed = true;
    const err = asError(error);
    const held = this.#held!;
    // Nothing sent yet: a front door may answer the failure its own way.
    const status = statusFor(error);
    let answered = false;
    if (this.#onFailure !== null && !held.headersSent) {
      try {
        answered = this.#onFailure(err, status, () => held.reset(status));
      } catch (thrown) {
        core.report(asError(thrown));
        answered = false;
      }
    }
    if (!answered) held.fail(status, err);
    core.report(err);
  }

  /**
   * A handler that threw or rejected: a 500 if it had not ended its
   * response. Its data changes are not stored; a drop(), renew() or
   * revokeOtherSessions() it made still applies, and the 500 carries the cookie.
   */
  handlerFailed(error: unknown): void {
    const core = this.#core;
    const err = asError(error);
    const held = this.#held;
    if (!core.failed && !this.ended()) {
      if (held && !held.headersOut && this.session.idChangePending) {
        // The 500 goes out through the held response, after the rounds.
        held.answer(500);
        core.report(err);
        return;
      }
      core.failed = true;
      if (held) {
        held.fail(500, err);
      } else if (this.#res.headersSent) {
        this.#res.destroy(err);
      } else {
        respond(this.#res, 500);
      }
    }
    core.report(err);
  }
}
