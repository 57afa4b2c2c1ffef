// Fastify 5 with supervised-sessions/fastify on a file, default settings (the built package).
import Fastify from 'fastify';
// SESSIONS_DIST: another build of the package (npm run bench -- --before=REV).
const dist = process.env.SESSIONS_DIST ?? new URL('../../dist/', import.meta.url).href;
const { startSessionApp } = await import(new URL('index.js', dist).href);
const { fastifySessions } = await import(new URL('http/fastify.js', dist).href);
import { database, port, SECRET, stats } from './common.mjs';

const app = await startSessionApp({ database });
const fastify = Fastify({ logger: false });
fastify.get('/__stats', async (_req, reply) => reply.send(stats()));
await fastify.register(async (scoped) => {
  await scoped.register(fastifySessions, { store: app.store, secret: SECRET });
  scoped.get('/login', async (req) => {
    req.session.set('n', 0);
    return { n: 0 };
  });
  scoped.get('/r', async (req) => ({ n: req.session.get('n') ?? 0 }));
  scoped.get('/w', async (req) => {
    const n = (req.session.get('n') ?? 0) + 1;
    req.session.set('n', n);
    return { n };
  });
});
await fastify.listen({ port, host: '127.0.0.1' });
process.stdout.write(`READY ${fastify.server.address().port}\n`);
process.once('SIGTERM', () => {
  void fastify
    .close()
    .then(() => app.stop())
    .then(() => process.exit(0));
});
