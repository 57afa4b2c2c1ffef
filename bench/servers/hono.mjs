// Hono 4 on @hono/node-server with hono-sessions and its MemoryStore.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { MemoryStore, sessionMiddleware } from 'hono-sessions';
import { port, SECRET, stats } from './common.mjs';

const hono = new Hono();
hono.get('/__stats', (c) => c.body(stats(), 200, { 'content-type': 'application/json' }));
const routes = new Hono();
routes.use(
  sessionMiddleware({
    store: new MemoryStore(),
    encryptionKey: SECRET,
    expireAfterSeconds: 86400,
    cookieOptions: { sameSite: 'Lax', path: '/', httpOnly: true },
  }),
);
routes.get('/login', (c) => {
  c.get('session').set('n', 0);
  return c.json({ n: 0 });
});
routes.get('/r', (c) => c.json({ n: c.get('session').get('n') ?? 0 }));
routes.get('/w', (c) => {
  const n = (c.get('session').get('n') ?? 0) + 1;
  c.get('session').set('n', n);
  return c.json({ n });
});
hono.route('/', routes);
serve({ fetch: hono.fetch, port, hostname: '127.0.0.1' }, (info) => process.stdout.write(`READY ${info.port}\n`));
