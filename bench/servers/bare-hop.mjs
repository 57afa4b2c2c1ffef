// The design's floor: bare node:http plus the hops a session request makes —
// calls through the library's own mailbox (MailboxClient: calls of one
// event-loop turn batched into one message) to a worker thread that echoes
// them back (serveMailbox): one round trip for R, two in a row for W. No
// cookie, no session, no SQLite: what is left is the cost of crossing to the
// store actor's thread and back.
import { createServer } from 'node:http';
import { MessageChannel, Worker } from 'node:worker_threads';
import { port, ready, stats } from './common.mjs';

const dist = process.env.SESSIONS_DIST ?? new URL('../../dist/', import.meta.url).href;
const { MailboxClient } = await import(new URL('runtime/mailbox-client.js', dist).href);

const errors = {
  timeout: (op, ms) => new Error(`${op} timed out after ${ms} ms`),
  full: (op, max) => new Error(`${op}: ${max} calls pending`),
  poison: (op) => new Error(`${op}: poison`),
  closed: (reason) => new Error(`closed: ${reason}`),
  decode: (wire) => new Error(wire.message),
};
const client = new MailboxClient({ timeoutMs: 5000, errors });
const { port1, port2 } = new MessageChannel();
const worker = new Worker(new URL('hop-worker.mjs', import.meta.url), { workerData: { port: port2, dist }, transferList: [port2] });
worker.unref();
client.attach(port1);

// R makes one round trip (the session's load); W makes two in a row, as a
// read-modify-write does (the load, then the commit's patch).
const server = createServer((req, res) => {
  if (req.url === '/__stats') return res.end(stats());
  const write = req.url === '/w';
  const trip = client.call('echo', 0);
  (write ? trip.then(() => client.call('echo', 1)) : trip).then(
    (value) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ n: value }));
    },
    (error) => {
      res.statusCode = 503;
      res.end(error.message);
    },
  );
});
server.listen(port, '127.0.0.1', () => ready(server));
process.once('SIGTERM', () => {
  server.close();
  client.close('stopped');
  void worker.terminate().then(() => process.exit(0));
});
