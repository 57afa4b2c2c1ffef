// Koa 3 with koa-session and an in-memory external store (a Map: koa-session's
// default keeps the data in the cookie, which is not a server-side session).
import Koa from 'koa';
import session from 'koa-session';
import { port, SECRET, stats } from './common.mjs';

const sessions = new Map();
const store = {
  get: (key) => sessions.get(key),
  set: (key, value) => {
    sessions.set(key, value);
  },
  destroy: (key) => {
    sessions.delete(key);
  },
};
const koa = new Koa();
koa.keys = [SECRET];
koa.use(async (ctx, next) => {
  if (ctx.path !== '/__stats') return next();
  ctx.type = 'json';
  ctx.body = stats();
});
koa.use(session({ store, signed: true }, koa));
koa.use(async (ctx) => {
  if (ctx.path === '/login') {
    ctx.session.n = 0;
    ctx.body = { n: 0 };
  } else if (ctx.path === '/r') {
    ctx.body = { n: ctx.session.n ?? 0 };
  } else if (ctx.path === '/w') {
    const n = (ctx.session.n ?? 0) + 1;
    ctx.session.n = n;
    ctx.body = { n };
  }
});
const server = koa.listen(port, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`));
