// The mailbox benchmark's actor: a raw MessagePort echo, or an echo served
// through the mailbox (runActor + serveMailbox), as workerData.mode says.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { runActor } from '../src/runtime/actor.ts';
import { serveMailbox } from '../src/runtime/mailbox-server.ts';

const { mode, port, shared } = workerData as { mode: 'raw' | 'mailbox' | 'atomics'; port: MessagePort; shared?: SharedArrayBuffer };
if (mode === 'atomics') {
  // The hop without MessagePort: slot 0 counts requests, slot 1 replies; the
  // worker blocks in Atomics.wait, the main thread awaits Atomics.waitAsync.
  const slots = new Int32Array(shared!);
  parentPort!.postMessage({ type: 'ready' });
  let seen = 0;
  for (;;) {
    Atomics.wait(slots, 0, seen);
    seen = Atomics.load(slots, 0);
    if (seen < 0) break;
    Atomics.store(slots, 1, seen);
    Atomics.notify(slots, 1);
  }
} else if (mode === 'raw') {
  port.on('message', (message) => port.postMessage(message));
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', () => process.exit(0));
} else {
  await runActor({
    init: () => serveMailbox(port, (requests) => requests.map(({ args }) => ({ ok: true, value: args }))),
    stop: () => port.close(),
  });
}
