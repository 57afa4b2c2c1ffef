// supervised-sessions: createHandler + startSessionApp on a file, default settings,
// on the built package, as users run it (dist/, built by npm run bench);
// COOKIE_MAX_AGE sets cookie.maxAge (the sliding cookie is then re-sent on every response);
// INSTRUMENTS=off turns the app's counting off (below).
import { createServer } from 'node:http';
// SESSIONS_DIST: another build of the package (npm run bench -- --before=REV).
const dist = process.env.SESSIONS_DIST ?? new URL('../../dist/', import.meta.url).href;
const { createHandler, startSessionApp } = await import(new URL('index.js', dist).href);
import { database, port, ready, SECRET, stats } from './common.mjs';

// INSTRUMENTS=off: the same server with the app's counting (metrics.js, on
// the request path) replaced by no-ops, for the instruments' cost.
if (process.env.INSTRUMENTS === 'off') {
  const { Metrics } = await import(new URL('metrics.js', dist).href);
  Metrics.prototype.call = () => {};
  Metrics.prototype.batch = () => {};
}

// TABLE: a table (on Redis, a key prefix) of its own, beside another server on the same database.
const app = await startSessionApp({ database, ...(process.env.TABLE ? { table: process.env.TABLE } : {}) });
const server = createServer(
  createHandler(
    app.store,
    (req, res, session) => {
      switch (req.url) {
        case '/__stats':
          res.end(stats());
          return;
        case '/login':
          session.set('n', 0);
          break;
        case '/w':
          session.set('n', (session.get('n') ?? 0) + 1);
          break;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ n: session.get('n') ?? 0 }));
    },
    { secret: SECRET, ...(process.env.COOKIE_MAX_AGE ? { cookie: { maxAge: Number(process.env.COOKIE_MAX_AGE) } } : {}) },
  ),
);
server.listen(port, '127.0.0.1', () => ready(server));
process.once('SIGTERM', () => {
  server.close();
  void app.stop().then(() => process.exit(0));
});
