// supervised-sessions/fastify: the Session, its commit rules and guarantees,
// as a Fastify 5 plugin. The session loads in onRequest and commits in
// onSend, before the reply goes out.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { SessionStore } from '../store/session-store.ts';
import { DeferredCommit } from './commit-core.ts';
import { FrontDoor, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { requirePeer } from './peer.ts';
import { asError, withStatus } from './failures.ts';
import type { Session } from './session.ts';

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

const kCommit = Symbol('supervised-sessions.commit');
type WithCommit = FastifyRequest & { [kCommit]?: DeferredCommit<IncomingMessage> };

/**
 * onSend: every change stored, then the cookie decided (the commit core's
 * DeferredCommit: nothing is held, Fastify waits for the hook and writes the
 * reply after it). A failure throws, with statusCode 503 or 500.
 */
async function finish(commit: DeferredCommit<IncomingMessage>, reply: FastifyReply): Promise<void> {
  if (commit.phase !== 'open') return;
  try {
    await commit.finish(() => reply.statusCode);
  } catch (error) {
    // The error reply carries no session cookie, and its status is set
    // here: an app's error handler that sets none must not send a 2xx.
    reply.removeHeader('set-cookie');
    const err = withStatus(error);
    reply.code(err.statusCode);
    throw err;
  }
  const next = commit.core.cookieHeader(reply.getHeader('set-cookie') as string | string[] | undefined);
  if (next === null) return;
  reply.removeHeader('set-cookie');
  reply.header('set-cookie', next);
}

/**
 * `app.register(fastifySessions, { store: app.store, ...options })`, then
 * `request.session` in every route. The options are createHandler's.
 */
export function fastifySessions(fastify: FastifyInstance, options: FastifySessionsOptions, done: (error?: Error) => void): void {
  const { store, ...rest } = options ?? ({} as FastifySessionsOptions);
  let door: FrontDoor;
  try {
    door = new FrontDoor(store, rest, 'fastifySessions: options.store', undefined, 'fastifySessions');
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
      const err = withStatus(error);
      reply.code(err.statusCode);
      door.onError(err, request.raw);
      throw err;
    }
    const commit = new DeferredCommit(door.context(request.raw), request.raw, loaded, door.owesResend(loaded));
    (request as WithCommit)[kCommit] = commit;
    request.session = commit.session;
  });
  // A reply that bypassed onSend (reply.hijack(), raw writes): changes it
  // left pending were never stored; say so.
  fastify.addHook('onResponse', async (request) => {
    const commit = (request as WithCommit)[kCommit];
    if (commit && commit.phase === 'open' && commit.session.pending) {
      commit.phase = 'done';
      door.onError(
        new Error('the reply was sent without onSend (reply.hijack() or a raw write): the session changes were not stored'),
        request.raw,
      );
    }
  });
  fastify.addHook('onSend', async (request, reply, payload) => {
    const commit = (request as WithCommit)[kCommit];
    if (commit) {
      try {
        await finish(commit, reply);
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
