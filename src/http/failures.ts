// What every front door answers for a failure, in one place: the status of
// each kind of error, and an Error for anything thrown.
import { AppStoppedError, StoreUnavailableError } from '../errors.ts';

/** 503 when the store cannot answer or the app is stopped; 500 for the rest. */
export function statusFor(error: unknown): number {
  return error instanceof StoreUnavailableError || error instanceof AppStoppedError ? 503 : 500;
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
