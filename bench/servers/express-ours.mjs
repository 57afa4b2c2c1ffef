// Express 5 with supervised-sessions/express on a file, default settings (the built package).
import express from 'express';
// SESSIONS_DIST: another build of the package (npm run bench -- --before=REV).
const dist = process.env.SESSIONS_DIST ?? new URL('../../dist/', import.meta.url).href;
const { startSessionApp } = await import(new URL('index.js', dist).href);
const { sessions } = await import(new URL('http/express.js', dist).href);
import { database, port, ready, SECRET, stats } from './common.mjs';

const app = await startSessionApp({ database });
const web = express();
web.get('/__stats', (_req, res) => {
  res.end(stats());
});
web.use(sessions(app.store, { secret: SECRET }));
web.get('/login', (req, res) => {
  req.session.set('n', 0);
  res.json({ n: 0 });
});
web.get('/r', (req, res) => {
  res.json({ n: req.session.get('n') ?? 0 });
});
web.get('/w', (req, res) => {
  const n = (req.session.get('n') ?? 0) + 1;
  req.session.set('n', n);
  res.json({ n });
});
const server = web.listen(port, '127.0.0.1', () => ready(server));
process.once('SIGTERM', () => {
  server.close();
  void app.stop().then(() => process.exit(0));
});
