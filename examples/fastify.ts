// The example app on Fastify (`node examples/fastify.ts`): the same pages as
// `npm start` — visit counter, name, renew, log out, login with "your
// sessions" — through supervised-sessions/fastify.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db), SESSION_SECRET.
import Fastify from 'fastify';
import { startSessionApp } from 'supervised-sessions';
import { fastifySessions } from 'supervised-sessions/fastify';
import { route } from './pages.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const app = await startSessionApp({ database });

const fastify = Fastify();
// Forms: parsed by Fastify, at most 4 KiB (a larger one is Fastify's own 413).
fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
  done(null, new URLSearchParams(body as string));
});
await fastify.register(fastifySessions, { store: app.store, secret: process.env.SESSION_SECRET || undefined });
fastify.all('/*', async (request, reply) => {
  const path = new URL(request.url, 'http://x').pathname;
  const form = request.body instanceof URLSearchParams ? request.body : null;
  const answer = await route(app, request.session, request.method, path, request.headers, form);
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
});

const address = await fastify.listen({ port, host: '127.0.0.1' });
console.log(`supervised-sessions Fastify example listening on ${address} (database: ${database})`);

async function shutdown(): Promise<void> {
  await fastify.close();
  await app.stop();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
