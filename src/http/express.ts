// supervised-sessions/express: the Session, its commit rules and guarantees,
// as Express/Connect middleware (Express 5 and 4).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionStore } from '../store/session-store.ts';
import { FrontDoor, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { requirePeer } from './peer.ts';
import { RequestCommit } from './request-commit.ts';
import { asError, withStatus } from './failures.ts';
import type { Session } from './session.ts';

requirePeer('express', 'supervised-sessions/express');

declare global {
  namespace Express {
    interface Request {
      /** The request's session (supervised-sessions/express). */
      session: Session;
    }
  }
}

type Next = (error?: unknown) => void;

/**
 * Sessions for Express: `app.use(sessions(app.store, options))`, then
 * `req.session` in every route. The options are createHandler's. The commit
 * runs before the response goes out, with the same rules; a store failure
 * while the headers are unsent goes to the app's error middleware as
 * `next(err)` with `err.status` 503 (store unavailable or stopped) or 500.
 */
export function sessions(store: SessionStore, options?: HandlerOptions): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const door = new FrontDoor(store, options, 'sessions(store)', undefined, 'sessions');

  function attach(req: IncomingMessage & { session?: Session }, res: ServerResponse, next: Next, loaded: Loaded): void {
    const commit = RequestCommit.begin(door, req, res, loaded, (error, _status, reset) => {
      // Nothing went out yet: the app's error middleware answers, on a clean response.
      reset();
      next(withStatus(error));
      return true;
    });
    req.session = commit.session;
    next();
  }

  return function sessionMiddleware(req: IncomingMessage & { session?: Session }, res: ServerResponse, next: Next): void {
    // Mounted twice (a router and the app): the first one's session stands.
    if (req.session !== undefined) {
      next();
      return;
    }
    const loaded = door.load(req);
    if (!(loaded instanceof Promise)) {
      attach(req, res, next, loaded);
      return;
    }
    loaded
      .then(
        (value) => attach(req, res, next, value),
        (error: unknown) => {
          const err = withStatus(error);
          door.onError(err, req);
          next(err);
        },
      )
      .catch((error: unknown) => door.onError(asError(error), req));
  };
}

export type { HandlerOptions, Session };
