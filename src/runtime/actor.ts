import { parentPort } from 'node:worker_threads';
import { toWire } from '../errors.ts';

export interface ActorOptions {
  /** Opens what the actor owns; its result is sent with the ready message. */
  init(): unknown | Promise<unknown>;
  /** Releases what the actor owns on a graceful stop. */
  stop(): void | Promise<void>;
}

/**
 * The worker-side half of the ChildHost handshake: `ready` once `init` has
 * succeeded, `start-error` (as `{ code, message }` data) when it fails, and a
 * clean exit with code 0 after `stop`, which the parent reads as `shutdown`.
 */
export async function runActor(options: ActorOptions): Promise<void> {
  if (!parentPort) throw new Error('runActor must run inside a worker thread');
  const port = parentPort;
  let info: unknown;
  try {
    info = await options.init();
  } catch (error) {
    port.postMessage({ type: 'start-error', error: toWire(error) });
    // Stay alive until the parent, having read the error, terminates us: an
    // exit racing the message would be read as a start that ended for no reason.
    port.on('message', () => {});
    return;
  }
  port.on('message', (message: { type?: string }) => {
    if (message?.type !== 'stop') return;
    void (async () => {
      await options.stop();
      // process.exit in a worker ends only this thread, with that code.
      process.exit(0);
    })();
  });
  port.postMessage({ type: 'ready', info });
}
