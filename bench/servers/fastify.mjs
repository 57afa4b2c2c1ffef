// @fastify/session with its default (in-memory) store.
import Fastify from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { port, SECRET, stats } from './common.mjs';

const app = Fastify({ logger: false });
app.get('/__stats', async (_req, reply) => reply.send(stats()));
await app.register(fastifyCookie);
await app.register(fastifySession, { secret: SECRET, saveUninitialized: false, cookie: { secure: false } });
app.get('/login', async (req) => {
  req.session.set('n', 0);
  return { n: 0 };
});
app.get('/r', async (req) => ({ n: req.session.get('n') ?? 0 }));
app.get('/w', async (req) => {
  const n = (req.session.get('n') ?? 0) + 1;
  req.session.set('n', n);
  return { n };
});
await app.listen({ port, host: '127.0.0.1' });
process.stdout.write(`READY ${app.server.address().port}\n`);
