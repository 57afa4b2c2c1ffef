// The example app (`npm start`): a visit counter, a name stored in the
// session, "renew id" and "log out" buttons, a login (the name you give is
// the user id) with "your sessions" — this device marked, a revoke button per
// other device, "log out other devices" — and the supervisor's status.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db; a
// postgres:// URL selects PostgreSQL),
// SESSION_SECRET (signs the cookie when set), SESSIONS_ADMIN=1 (enables the
// /admin/* routes the fault drills use; off by default, never in production;
// POST only, and refused from another site's page).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHandler, startSessionApp, type SessionApp } from 'supervised-sessions';
import { FORM_PATHS, readForm, route, sameOrigin } from './pages.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const admin = process.env.SESSIONS_ADMIN === '1';

const app: SessionApp = await startSessionApp({
  database,
  // Short intervals make the status panel lively; a real app keeps the defaults.
  cleanerInterval: Number(process.env.CLEANER_INTERVAL ?? 60),
  maxAge: Number(process.env.MAX_AGE ?? 86400),
});

async function adminRoute(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
  // Admin actions change the server: never a GET a page could trigger, never from another site.
  if (req.method !== 'POST' || !sameOrigin(req.headers)) {
    res.writeHead(req.method !== 'POST' ? 405 : 403, {
      'content-type': 'text/plain; charset=utf-8',
      ...(req.method !== 'POST' ? { allow: 'POST' } : {}),
    });
    res.end(req.method !== 'POST' ? 'admin routes take POST\n' : 'cross-site request refused\n');
    return;
  }
  if (url.pathname === '/admin/status') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ...app.status(), lastSweep: app.lastSweep, pid: process.pid }));
    return;
  }
  const child = url.pathname.slice('/admin/kill/'.length);
  if (url.pathname.startsWith('/admin/kill/') && (child === 'store' || child === 'cleaner')) {
    await app.kill(child);
    res.end(`killed ${child}\n`);
    return;
  }
  if (url.pathname === '/admin/sweep') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(await app.sweep()));
    return;
  }
  res.statusCode = 404;
  res.end('not found\n');
}

const handler = createHandler(
  app.store,
  async (req, res, session) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (admin && url.pathname.startsWith('/admin/')) return adminRoute(req, url, res);
    const method = req.method ?? 'GET';
    const form = method === 'POST' && FORM_PATHS.has(url.pathname) && sameOrigin(req.headers) ? await readForm(req) : null;
    const answer = await route(app, session, method, url.pathname, req.headers, form);
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  },
  { key: 'sid', secret: process.env.SESSION_SECRET || undefined },
);

// /metrics for Prometheus, outside the session handler: a scrape creates no session.
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(app.metrics());
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 5000;

let stopping = false;
async function shutdown(signal: string, code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  // Stop taking connections, let the open requests finish, then stop the app.
  server.close();
  server.closeIdleConnections();
  await app.stop();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));

// The supervisor gave up: sessions cannot be served. Our policy is to say so
// loudly, answer 503 for a moment (the app already does), and exit non-zero
// so a process manager restarts the whole server.
app.on('error', (error) => {
  console.error(`supervisor gave up: ${error.message}`);
  setTimeout(() => void shutdown('supervisor failure', 1), 500).unref();
});

/** A database URL as it may be printed: its password masked. */
function withoutPassword(database: string): string {
  return database.replace(/^([a-z+]+:\/\/[^:/?#@]*):.*@/i, '$1:***@');
}

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`supervised-sessions example listening on http://127.0.0.1:${actual} (database: ${withoutPassword(database)})`);
});
