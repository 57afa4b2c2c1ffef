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

/** The error a framework is handed: `status` and `statusCode` set from the registry. */
export function withStatus(error: unknown): Error & { status: number; statusCode: number } {
  const err = asError(error) as Error & { status: number; statusCode: number };
  err.status = err.statusCode = statusFor(error);
  return err;
}
