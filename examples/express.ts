// The example app on Express (`node examples/express.ts`): the same pages as
// `npm start` — visit counter, name, renew, log out, login with "your
// sessions" — through supervised-sessions/express.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db), SESSION_SECRET.
import express from 'express';
import { startSessionApp } from 'supervised-sessions';
import { sessions } from 'supervised-sessions/express';
import { FORM_PATHS, readForm, route, sameOrigin } from './pages.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const app = await startSessionApp({ database });

const web = express();
web.disable('x-powered-by');
web.use(sessions(app.store, { secret: process.env.SESSION_SECRET || undefined }));
web.use(async (req, res, next) => {
  try {
    const form = req.method === 'POST' && FORM_PATHS.has(req.path) && sameOrigin(req.headers) ? await readForm(req) : null;
    const answer = await route(app, req.session, req.method, req.path, req.headers, form);
    res.status(answer.status).set(answer.headers).send(answer.body);
  } catch (error) {
    next(error);
  }
});
// A store failure before the response arrives here with err.status 503 (or 500).
web.use((error: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  res
    .status(error.status ?? 500)
    .type('text/plain')
    .send(`${error.status ?? 500} ${error.message}\n`);
});

const server = web.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(
    `supervised-sessions Express example listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : port} (database: ${database})`,
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
