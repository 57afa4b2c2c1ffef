import { Worker, type ResourceLimits, type Transferable } from 'node:worker_threads';
import type { ExitReason, Incarnation } from './child.ts';
import { fromWire, type WireError } from '../errors.ts';
import { safeDelay } from './timers.ts';

export interface WorkerChildOptions {
  filename: URL;
  workerData?: unknown;
  transferList?: Transferable[];
  resourceLimits?: ResourceLimits;
  /** How long the ready handshake may take before the start counts as failed. */
  startTimeoutMs?: number;
}

export interface ReadyInfo {
  incarnation: Incarnation;
  /** Whatever the actor sent with its ready message. */
  info: unknown;
}

type ControlMessage = { type: 'ready'; info?: unknown } | { type: 'start-error'; error: WireError };

/**
 * Starts one incarnation: always a new Worker, never a reused thread, so a
 * restarted child begins from fresh module state (OTP restarts a child from
 * its start function, never from the crashed process's memory).
 */
export function startWorkerChild(options: WorkerChildOptions): Promise<ReadyInfo> {
  const worker = new Worker(options.filename, {
    workerData: options.workerData,
    transferList: options.transferList,
    resourceLimits: options.resourceLimits,
    // The actor's own stdout/stderr still reach the parent's; nothing else is shared.
  });
  // An idle child must not keep the process alive; the mailbox refs its own
  // port while a call is pending, which is what keeps a busy process alive.
  worker.unref();

  let stopRequested = false;
  let killRequested = false;
  let lastError: Error | null = null;
  worker.on('error', (error) => {
    lastError = error;
  });

  const exited = new Promise<ExitReason>((resolve) => {
    worker.once('exit', (code) => {
      if (killRequested) resolve({ kind: 'killed' });
      else if (stopRequested && code === 0) resolve({ kind: 'shutdown' });
      else if (lastError) resolve({ kind: 'crashed', error: lastError });
      else if (code !== 0) resolve({ kind: 'crashed', error: new Error(`the thread exited with code ${code}`) });
      else resolve({ kind: 'normal' });
    });
  });

  const incarnation: Incarnation = {
    threadId: worker.threadId,
    exited,
    async stop(timeoutMs) {
      stopRequested = true;
      worker.postMessage({ type: 'stop' });
      const timer = setTimeout(() => {
        // OTP: the child did not stop within its shutdown time; brutal_kill.
        killRequested = true;
        void worker.terminate();
      }, safeDelay(timeoutMs));
      const reason = await exited;
      clearTimeout(timer);
      return reason;
    },
    async kill() {
      killRequested = true;
      await worker.terminate();
      await exited;
    },
  };

  return new Promise<ReadyInfo>((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new Error(`no ready handshake within ${options.startTimeoutMs ?? 15000} ms`));
    }, options.startTimeoutMs ?? 15000);
    const onMessage = (message: ControlMessage) => {
      if (message?.type === 'ready') {
        cleanup();
        resolve({ incarnation, info: message.info });
      } else if (message?.type === 'start-error') {
        fail(fromWire(message.error));
      }
    };
    const onEarlyExit = (reason: ExitReason) => {
      cleanup();
      reject(reason.kind === 'crashed' ? reason.error : new Error(`the thread ended before it was ready (${reason.kind})`));
    };
    function cleanup() {
      clearTimeout(timer);
      worker.off('message', onMessage);
    }
    function fail(error: Error) {
      cleanup();
      killRequested = true;
      // A failed start leaves nothing running: wait for the thread to be gone.
      void worker
        .terminate()
        .then(() => exited)
        .then(() => reject(error));
    }
    worker.on('message', onMessage);
    void exited.then((reason) => {
      if (!killRequested) onEarlyExit(reason);
    });
  });
}
