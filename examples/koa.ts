// The example app on Koa (`node examples/koa.ts`): the same pages as
// `npm start` — visit counter, name, renew, log out, login with "your
// sessions" — through supervised-sessions/koa.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db), SESSION_SECRET.
import Koa from 'koa';
import { startSessionApp } from 'supervised-sessions';
import { sessions } from 'supervised-sessions/koa';
import { FORM_PATHS, readForm, route, sameOrigin } from './pages.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const app = await startSessionApp({ database });

const koa = new Koa();
// A store failure arrives here as an error with status 503 (or 500); Koa's
// own ctx.onerror would answer it too, with a bare status text.
koa.use(async (ctx, next) => {
  try {
    await next();
  } catch (error) {
    const status = (error as { status?: number }).status ?? 500;
    ctx.status = status;
    ctx.type = 'text/plain';
    ctx.body = `${status} ${status === 503 ? 'the session store is unavailable, try again' : 'something went wrong'}\n`;
    if (status >= 500) ctx.app.emit('error', error, ctx);
  }
});
koa.use(sessions(app.store, { secret: process.env.SESSION_SECRET || undefined }));
koa.use(async (ctx) => {
  const form = ctx.method === 'POST' && FORM_PATHS.has(ctx.path) && sameOrigin(ctx.headers) ? await readForm(ctx.req) : null;
  const answer = await route(app, ctx.session, ctx.method, ctx.path, ctx.headers, form);
  ctx.status = answer.status;
  ctx.set(answer.headers);
  ctx.body = answer.body;
});

const server = koa.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(
    `supervised-sessions Koa example listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : port} (database: ${database})`,
  );
});

async function shutdown(): Promise<void> {
  server.close();
  server.closeIdleConnections();
  await app.stop();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
