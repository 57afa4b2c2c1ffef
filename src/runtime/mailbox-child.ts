import { MessageChannel, type ResourceLimits } from 'node:worker_threads';
import type { ChildSpec, Incarnation } from './child.ts';
import type { MailboxClient } from './mailbox-client.ts';
import { startWorkerChild } from './worker-child.ts';

export interface MailboxChildOptions {
  name: string;
  filename: URL;
  /** Sent to every incarnation; the mailbox port is added as `workerData.port`. */
  workerData: Record<string, unknown>;
  client: MailboxClient;
  resourceLimits?: ResourceLimits;
  /** Told what each incarnation sent with its ready message. */
  onReady?(info: unknown): void;
}

/**
 * A child whose every incarnation is a Worker serving a mailbox. Each
 * incarnation gets a new MessageChannel: the client is bound to it once the
 * actor is ready, and unbound as soon as the thread is seen to exit, so calls
 * made meanwhile wait for the next incarnation instead of being lost.
 */
export function mailboxChild(options: MailboxChildOptions): ChildSpec {
  return {
    name: options.name,
    async start(): Promise<Incarnation> {
      const { port1, port2 } = new MessageChannel();
      let ready: Awaited<ReturnType<typeof startWorkerChild>>;
      try {
        ready = await startWorkerChild({
          filename: options.filename,
          workerData: { ...options.workerData, port: port2 },
          transferList: [port2],
          resourceLimits: options.resourceLimits,
        });
      } catch (error) {
        port1.close();
        throw error;
      }
      options.onReady?.(ready.info);
      options.client.attach(port1);
      void ready.incarnation.exited.then(() => options.client.detach());
      return ready.incarnation;
    },
  };
}
