// What every front door answers for a failure, in one place: the status of
// each kind of error (from the errors' registry), and an Error for anything
// thrown.
import { errorClassOf, SessionError } from '../errors.ts';

/** The status of a library error's class (503 when the store cannot answer or the app is stopped); 500 for the rest. */
export function statusFor(error: unknown): number {
  return error instanceof SessionError ? (errorClassOf(error.code)?.status ?? 500) : 500;
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The error a framework is handed: `status` and `statusCode` set from the
 * registry, and `expose: false` — the shape of an http-errors 5xx, which
 * Koa, Express's finalhandler and NestJS's exception filter answer with its
 * status and a bare status text (not the store's message).
 */
export function withStatus(error: unknown): Error & { status: number; statusCode: number; expose: boolean } {
  const err = asError(error) as Error & { status: number; statusCode: number; expose: boolean };
  err.status = err.statusCode = statusFor(error);
  err.expose = false;
  return err;
}
