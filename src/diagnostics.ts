// node:diagnostics_channel: what tracing instrumentations hook into, as they
// do for undici. Publishing costs nothing while nobody subscribes: every
// publish is behind a hasSubscribers check.
import diagnosticsChannel from 'node:diagnostics_channel';

/** Around every store call: start, end, asyncStart, asyncEnd, error; context `{ op }`. */
export const storeChannel = diagnosticsChannel.tracingChannel<{ op: string }>('supervised-sessions:store');
/** The app's 'restart' events' payloads: `{ child, reason, restarts }`. */
export const restartChannel = diagnosticsChannel.channel('supervised-sessions:restart');
/** Every sweep's report: `{ deleted, durationMs, trigger, skipped, live }`. */
export const sweepChannel = diagnosticsChannel.channel('supervised-sessions:sweep');

/** Runs a store call inside the tracing channel when anyone listens. */
export function traced<T>(op: string, call: () => Promise<T>): Promise<T> {
  if (!storeChannel.hasSubscribers) return call();
  return storeChannel.tracePromise(call, { op });
}
