// The mailbox benchmark's actor: a raw MessagePort echo, or an echo served
// through the mailbox (runActor + serveMailbox), as workerData.mode says.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { runActor } from '../src/runtime/actor.ts';
import { serveMailbox } from '../src/runtime/mailbox-server.ts';

const { mode, port } = workerData as { mode: 'raw' | 'mailbox'; port: MessagePort };
if (mode === 'raw') {
  port.on('message', (message) => port.postMessage(message));
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', () => process.exit(0));
} else {
  await runActor({
    init: () => serveMailbox(port, (requests) => requests.map(({ args }) => ({ ok: true, value: args }))),
    stop: () => port.close(),
  });
}
