// The example app on Hono (`node examples/hono.ts`): the same pages as
// `npm start` — visit counter, name, renew, log out, login with "your
// sessions" — through supervised-sessions/hono, served by @hono/node-server.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db), SESSION_SECRET.
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { startSessionApp } from 'supervised-sessions';
import { sessions, type SessionEnv } from 'supervised-sessions/hono';
import { FORM_PATHS, route, sameOrigin } from './pages.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const app = await startSessionApp({ database });

const hono = new Hono<SessionEnv>();
// Forms: at most 4 KiB; a larger one is a 413 before the session is loaded.
hono.use(bodyLimit({ maxSize: 4096, onError: (c) => c.text('form too large\n', 413, { connection: 'close' }) }));
hono.use(sessions(app.store, { secret: process.env.SESSION_SECRET || undefined }));
hono.all('*', async (c) => {
  const headers = Object.fromEntries(c.req.raw.headers) as IncomingHttpHeaders;
  const form =
    c.req.method === 'POST' && FORM_PATHS.has(c.req.path) && sameOrigin(headers) ? new URLSearchParams(await c.req.text()) : null;
  const answer = await route(app, c.var.session, c.req.method, c.req.path, headers, form);
  return c.body(answer.body, answer.status as 200, answer.headers);
});
// A store failure arrives here as an HTTPException 503 (or 500).
hono.onError((error, c) => {
  if (error instanceof HTTPException && error.status === 503) return c.text('503 the session store is unavailable, try again\n', 503);
  console.error(error);
  return c.text('500 something went wrong\n', 500);
});

const server = serve({ fetch: hono.fetch, port, hostname: '127.0.0.1' }, (info: AddressInfo) => {
  console.log(`supervised-sessions Hono example listening on http://127.0.0.1:${info.port} (database: ${database})`);
});

async function shutdown(): Promise<void> {
  server.close();
  await app.stop();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
