// bare-hop.mjs's other thread: the library's mailbox server, echoing each call.
import { workerData } from 'node:worker_threads';

const { port, dist } = workerData;
const { serveMailbox } = await import(new URL('runtime/mailbox-server.js', dist).href);
serveMailbox(port, (requests) => requests.map(({ args }) => ({ ok: true, value: args })));
