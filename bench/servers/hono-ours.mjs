// Hono 4 on @hono/node-server with supervised-sessions/hono on a file, default settings (the built package).
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startSessionApp } from '../../dist/index.js';
import { sessions } from '../../dist/http/hono.js';
import { database, port, SECRET, stats } from './common.mjs';

const app = await startSessionApp({ database });
const hono = new Hono();
hono.get('/__stats', (c) => c.body(stats(), 200, { 'content-type': 'application/json' }));
const routes = new Hono();
routes.use(sessions(app.store, { secret: SECRET }));
routes.get('/login', (c) => {
  c.var.session.set('n', 0);
  return c.json({ n: 0 });
});
routes.get('/r', (c) => c.json({ n: c.var.session.get('n') ?? 0 }));
routes.get('/w', (c) => {
  const n = (c.var.session.get('n') ?? 0) + 1;
  c.var.session.set('n', n);
  return c.json({ n });
});
hono.route('/', routes);
const server = serve({ fetch: hono.fetch, port, hostname: '127.0.0.1' }, (info) => process.stdout.write(`READY ${info.port}\n`));
process.once('SIGTERM', () => {
  server.close();
  void app.stop().then(() => process.exit(0));
});
