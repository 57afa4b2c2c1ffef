// The example app (`npm start`): a visit counter, a name stored in the
// session, "renew id" and "log out" buttons, a login (the name you give is
// the user id) with "your sessions" — this device marked, a revoke button per
// other device, "log out other devices" — and the supervisor's status.
//
// Environment: PORT (default 3000), DATABASE (default sessions.db),
// SESSION_SECRET (signs the cookie when set), SESSIONS_ADMIN=1 (enables the
// /admin/* routes the fault drills use; off by default, never in production;
// POST only, and refused from another site's page).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHandler, startSessionApp, type Session, type SessionApp, type SessionInfo } from '../src/index.ts';

const port = Number(process.env.PORT ?? 3000);
const database = process.env.DATABASE ?? 'sessions.db';
const admin = process.env.SESSIONS_ADMIN === '1';

const app: SessionApp = await startSessionApp({
  database,
  // Short intervals make the status panel lively; a real app keeps the defaults.
  cleanerInterval: Number(process.env.CLEANER_INTERVAL ?? 60),
  maxAge: Number(process.env.MAX_AGE ?? 86400),
});

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** "Your sessions": every live session of the logged-in user, this one marked. */
function devices(session: Session, list: SessionInfo[]): string {
  if (session.owner === null) {
    return `<form method="post" action="/login" id="login-form"><input name="user" placeholder="user id" maxlength="256" required> <button id="login">Log in</button></form>`;
  }
  const rows = list.map((info) => {
    const mine = info.handle === session.handle;
    return `<tr class="session" data-handle="${escape(info.handle)}"><td>${mine ? '<strong class="this-device">this device</strong>' : 'another device'}</td>` +
      `<td>${time(info.createdAt)}</td><td>${time(info.touchedAt)}</td><td>${mine ? '' : `<form method="post" action="/revoke"><input type="hidden" name="handle" value="${escape(info.handle)}"><button class="revoke">Revoke</button></form>`}</td></tr>`;
  }).join('');
  return `<p id="owner">Logged in as <strong>${escape(session.owner)}</strong>.</p>
  <table id="sessions"><tr><th>device</th><th>created (UTC)</th><th>last used (UTC)</th><th></th></tr>${rows}</table>
  <form method="post" action="/logout-others"><button id="logout-others">Log out other devices</button></form>`;
}

function page(session: Session, visits: number, list: SessionInfo[]): string {
  const status = app.status();
  const sweep = app.lastSweep;
  const name = session.get('name') as string | undefined;
  const rows = (['store', 'cleaner'] as const).map((child) => {
    const c = status.children[child];
    return `<tr><td>${child}</td><td class="state">${c.state}</td><td>${c.restarts}</td><td>${c.threadId ?? '–'}</td></tr>`;
  }).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supervised-sessions</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; } .counter { font-size: 3rem; font-weight: 700; margin: 0; }
  form { display: inline-block; margin: 0 .5rem .5rem 0; } table { border-collapse: collapse; }
  td, th { border: 1px solid #ccc; padding: .2rem .6rem; text-align: left; }
  section { margin: 1.5rem 0; }
</style></head>
<body>
<h1>supervised-sessions example</h1>
<section>
  <p>Visits in this session:</p>
  <p class="counter" id="visits">${visits}</p>
  <p id="greeting">${name ? `Hello, ${escape(name)}!` : 'No name stored yet.'}</p>
  <form method="post" action="/name"><input name="name" placeholder="your name" maxlength="100" required> <button id="save-name">Save name</button></form>
</section>
<section>
  <form method="post" action="/renew"><button id="renew">Renew id</button></form>
  <form method="post" action="/logout"><button id="logout">Log out</button></form>
</section>
<section>
  <h2>Your sessions</h2>
  ${devices(session, list)}
</section>
<section>
  <h2>Status: <span id="app-state">${status.state}</span></h2>
  <table><tr><th>child</th><th>state</th><th>restarts</th><th>thread</th></tr>${rows}</table>
  <p id="last-sweep">Last sweep: ${sweep ? `${sweep.deleted} deleted in ${sweep.durationMs.toFixed(1)} ms (${sweep.trigger})` : 'none yet'}</p>
</section>
</body></html>`;
}

/** The form body, or null when it is over `limit` bytes (nothing more of it is read). */
function readForm(req: IncomingMessage, limit = 4096): Promise<URLSearchParams | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading: an endless body must not grow memory. The 413 closes the connection.
        req.off('data', onData);
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function tooLarge(res: ServerResponse): void {
  res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  res.end('form too large\n');
}

/**
 * A state-changing request made by this site's own page: browsers send
 * Sec-Fetch-Site (same-origin) or at least Origin; another site's form or
 * image cannot pass as ours. Tools that send neither (curl, the drills) are
 * not a browser a page could drive.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function redirect(res: ServerResponse): void {
  res.writeHead(303, { location: '/' });
  res.end();
}

async function adminRoute(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
  // Admin actions change the server: never a GET a page could trigger, never from another site.
  if (req.method !== 'POST' || !sameOrigin(req)) {
    res.writeHead(req.method !== 'POST' ? 405 : 403, { 'content-type': 'text/plain; charset=utf-8', ...(req.method !== 'POST' ? { allow: 'POST' } : {}) });
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

const handler = createHandler(app.store, async (req, res, session) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (admin && url.pathname.startsWith('/admin/')) return adminRoute(req, url, res);
  // Every other state-changing form is this site's own too.
  if (req.method === 'POST' && !sameOrigin(req)) {
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('cross-site request refused\n');
    return;
  }
  if (req.method === 'GET' && url.pathname === '/') {
    const visits = ((session.get('visits') as number | undefined) ?? 0) + 1;
    session.set('visits', visits);
    const list = session.owner === null ? [] : await app.store.sessionsOf(session.owner);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.end(page(session, visits, list));
    return;
  }
  // A JSON counter for load tools and drills: read-modify-write of `n`.
  if (url.pathname === '/counter') {
    const n = ((session.get('n') as number | undefined) ?? 0) + (req.method === 'POST' ? 1 : 0);
    if (req.method === 'POST') session.set('n', n);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ n }));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/name') {
    const form = await readForm(req);
    if (form === null) return tooLarge(res);
    const name = form.get('name')?.trim().slice(0, 100);
    if (name) session.set('name', name);
    return redirect(res);
  }
  if (req.method === 'POST' && url.pathname === '/login') {
    const form = await readForm(req);
    if (form === null) return tooLarge(res);
    let user = form.get('user')?.trim().slice(0, 256);
    // A cut through a surrogate pair would not be a valid owner.
    if (user && !user.isWellFormed()) user = user.slice(0, -1);
    if (user) {
      // A login: a new id against fixation, and the session now belongs to the user.
      session.renew();
      session.setOwner(user);
    }
    return redirect(res);
  }
  if (req.method === 'POST' && url.pathname === '/revoke' && session.owner !== null) {
    const form = await readForm(req);
    if (form === null) return tooLarge(res);
    // Only a session of this user: a handle of someone else's is not found.
    await app.store.revoke(session.owner, form.get('handle') ?? '');
    return redirect(res);
  }
  if (req.method === 'POST' && url.pathname === '/logout-others' && session.owner !== null && session.id !== null) {
    await app.store.revokeAll(session.owner, { except: session.id });
    return redirect(res);
  }
  if (req.method === 'POST' && url.pathname === '/renew') {
    session.renew();
    return redirect(res);
  }
  if (req.method === 'POST' && url.pathname === '/logout') {
    session.drop();
    return redirect(res);
  }
  res.statusCode = 404;
  res.end('not found\n');
}, { key: 'sid', secret: process.env.SESSION_SECRET || undefined });

const server = createServer(handler);
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

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`supervised-sessions example listening on http://127.0.0.1:${actual} (database: ${database})`);
});
