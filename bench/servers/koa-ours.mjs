// Koa 3 with supervised-sessions/koa on a file, default settings (the built package).
import Koa from 'koa';
import { startSessionApp } from '../../dist/index.js';
import { sessions } from '../../dist/http/koa.js';
import { database, port, SECRET, stats } from './common.mjs';

const app = await startSessionApp({ database });
const koa = new Koa();
koa.use(async (ctx, next) => {
  if (ctx.path !== '/__stats') return next();
  ctx.type = 'json';
  ctx.body = stats();
});
koa.use(sessions(app.store, { secret: SECRET }));
koa.use(async (ctx) => {
  if (ctx.path === '/login') {
    ctx.session.set('n', 0);
    ctx.body = { n: 0 };
  } else if (ctx.path === '/r') {
    ctx.body = { n: ctx.session.get('n') ?? 0 };
  } else if (ctx.path === '/w') {
    const n = (ctx.session.get('n') ?? 0) + 1;
    ctx.session.set('n', n);
    ctx.body = { n };
  }
});
const server = koa.listen(port, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`));
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void app.stop().then(() => process.exit(0));
});
