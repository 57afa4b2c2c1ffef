import type { IncomingMessage, ServerResponse } from 'node:http';
import { respond } from './held-response.ts';
import { FrontDoor, type Loaded } from './front-door.ts';
import type { HandlerOptions } from './options.ts';
import { RequestCommit } from './request-commit.ts';
import { asError, statusFor } from './failures.ts';
import type { Session } from './session.ts';
import type { SessionStore } from '../store/session-store.ts';

export type SessionHandler = (req: IncomingMessage, res: ServerResponse, session: Session) => unknown;

/**
 * Wraps a node:http handler with sessions: reads the session cookie, loads
 * the session through the store, hands the handler a Session, and commits
 * it before the response completes (see RequestCommit for the rules).
 */
export function createHandler(
  store: SessionStore,
  handler: SessionHandler,
  options?: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const door = new FrontDoor(store, options, 'createHandler(store, handler)');
  if (typeof handler !== 'function') throw new TypeError('createHandler(store, handler): handler must be a function');

  function run(req: IncomingMessage, res: ServerResponse, loaded: Loaded): void {
    const commit = RequestCommit.begin(door, req, res, loaded);
    let result: unknown;
    try {
      result = handler(req, res, commit.session);
    } catch (error) {
      commit.handlerFailed(error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(undefined, (error: unknown) => commit.handlerFailed(error));
    }
  }

  return function sessionHandler(req: IncomingMessage, res: ServerResponse): void {
    const loaded = door.load(req);
    if (!(loaded instanceof Promise)) {
      run(req, res, loaded);
      return;
    }
    loaded
      .then(
        (value) => run(req, res, value),
        (error: unknown) => {
          if (!res.headersSent) respond(res, statusFor(error));
          door.onError(asError(error), req);
        },
      )
      .catch((error: unknown) => {
        // Nothing should get here (run catches the handler's errors): the request must still end.
        if (!res.headersSent) respond(res, 500);
        else res.destroy(asError(error));
      });
  };
}
