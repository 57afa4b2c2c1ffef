// supervised-sessions/fastify: the Session, its commit rules and guarantees,
// as a Fastify 5 plugin. The session loads in onRequest and commits in
// onSend, before the reply goes out.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SessionCommittedError, SessionHeadersSentError } from '../errors.ts';
import type { SessionStore } from '../store/session-store.ts';
import { beforeChange, commitRound, cookieHeader, forStatus, roundState, settleResend, type RoundState } from './commit-round.ts';
import { FrontDoor, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { requirePeer } from './peer.ts';
import type { CommitContext } from './commit-round.ts';
import { asError, statusFor } from './failures.ts';
import { Session, type ChangeKind, type SessionHost } from './session.ts';

requirePeer('fastify', 'supervised-sessions/fastify');

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session (supervised-sessions/fastify). */
    session: Session;
  }
}

export interface FastifySessionsOptions extends HandlerOptions {
  store: SessionStore;
}

type Phase = 'open' | 'committing' | 'done' | 'failed';
const kCommit = Symbol('supervised-sessions.commit');
type WithCommit = FastifyRequest & { [kCommit]?: ReplyCommit };

/** One request's commit in Fastify: the rounds run in onSend; nothing is held, Fastify waits for the hook. */
class ReplyCommit implements SessionHost {
  readonly session: Session;
  readonly #ctx: CommitContext;
  readonly #state: RoundState;
  readonly #request: FastifyRequest;
  phase: Phase = 'open';

  constructor(door: FrontDoor, request: FastifyRequest, loaded: Loaded) {
    this.#ctx = door.context(request.raw);
    this.#request = request;
    this.#state = roundState(loaded.hadCookie, door.owesResend(loaded), loaded.stale);
    this.session = new Session(loaded.id, loaded.data, this, loaded.owner, loaded.maxAge);
  }

  change(kind: ChangeKind, _session: Session): void {
    if (this.phase === 'done') throw new SessionCommittedError(`session.${kind === 'data' ? 'set/delete/clear/setOwner' : kind === 'lifetime' ? 'setMaxAge' : kind}() after the reply was sent: the change could not be stored`);
    // The reply failed (an error reply is on its way): ignored.
    if (this.phase === 'failed') return;
    if (kind === 'renew' && this.phase === 'committing') {
      throw new SessionHeadersSentError('session.renew() after the commit began: the new id could not reach the client');
    }
    if (this.phase === 'open') beforeChange(this.#state, kind);
    // The session is gone (dropped, renewed elsewhere): ignored.
    if (this.#state.gone) return;
  }

  /** onSend: every change stored, then the cookie decided. A failure throws, with statusCode 503 or 500. */
  async finish(reply: FastifyReply): Promise<void> {
    if (this.phase !== 'open') return;
    this.phase = 'committing';
    try {
      for (let work = this.session.take(); work !== null; work = this.session.take()) {
        // An error reply (5xx) stores no data changes; drop() and renew() apply (commit-round.ts).
        await commitRound(forStatus(work, reply.statusCode), this.session, this.#ctx, this.#state);
      }
      await settleResend(this.session, this.#ctx, this.#state, (error) => this.#ctx.onError(error, this.#request.raw));
    } catch (error) {
      this.phase = 'failed';
      // The error reply carries no session cookie, and its status is set
      // here: an app's error handler that sets none must not send a 2xx.
      reply.removeHeader('set-cookie');
      const err = asError(error) as Error & { statusCode: number };
      err.statusCode = statusFor(error);
      reply.code(err.statusCode);
      throw err;
    }
    this.phase = 'done';
    const next = cookieHeader(reply.getHeader('set-cookie') as string | string[] | undefined, this.#state.cookie);
    if (next === null) return;
    reply.removeHeader('set-cookie');
    reply.header('set-cookie', next);
  }
}

/**
 * `app.register(fastifySessions, { store: app.store, ...options })`, then
 * `request.session` in every route. The options are createHandler's.
 */
export function fastifySessions(fastify: FastifyInstance, options: FastifySessionsOptions, done: (error?: Error) => void): void {
  const { store, ...rest } = options ?? ({} as FastifySessionsOptions);
  let door: FrontDoor;
  try {
    door = new FrontDoor(store, rest, 'fastifySessions: options.store');
  } catch (error) {
    done(asError(error));
    return;
  }
  fastify.decorateRequest('session', null as unknown as Session);
  fastify.addHook('onRequest', async (request, reply) => {
    let loaded: Loaded;
    try {
      loaded = await door.load(request.raw);
    } catch (error) {
      const err = asError(error) as Error & { statusCode: number };
      err.statusCode = statusFor(error);
      reply.code(err.statusCode);
      door.onError(err, request.raw);
      throw err;
    }
    const commit = new ReplyCommit(door, request, loaded);
    (request as WithCommit)[kCommit] = commit;
    request.session = commit.session;
  });
  // A reply that bypassed onSend (reply.hijack(), raw writes): changes it
  // left pending were never stored; say so.
  fastify.addHook('onResponse', async (request) => {
    const commit = (request as WithCommit)[kCommit];
    if (commit && commit.phase === 'open' && commit.session.pending) {
      commit.phase = 'done';
      door.onError(new Error('the reply was sent without onSend (reply.hijack() or a raw write): the session changes were not stored'), request.raw);
    }
  });
  fastify.addHook('onSend', async (request, reply, payload) => {
    const commit = (request as WithCommit)[kCommit];
    if (commit) {
      try {
        await commit.finish(reply);
      } catch (error) {
        door.onError(asError(error), request.raw);
        throw error;
      }
    }
    return payload;
  });
  done();
}

// As fastify-plugin does: the hooks and the decorator apply to the app that
// registers the plugin, not to an encapsulated child context.
(fastifySessions as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(fastifySessions as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'supervised-sessions';

export default fastifySessions;
export type { HandlerOptions, Session };
