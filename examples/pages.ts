// What the three example servers share (`npm start`, examples/express.ts,
// examples/fastify.ts): the page, the form reader, the same-origin check, and
// every route but the admin ones, written once against the Session — each
// server only maps its framework's request and response onto it.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Session, SessionApp, SessionInfo } from 'supervised-sessions';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** "Your sessions": every live session of the logged-in user, this one marked. */
function devices(session: Session, list: SessionInfo[]): string {
  if (session.owner === null) {
    return `<form method="post" action="/login" id="login-form"><input name="user" placeholder="user id" maxlength="256" required> <label><input type="checkbox" name="remember" id="remember" value="1"> remember me for 30 days</label> <button id="login">Log in</button></form>`;
  }
  const rows = list
    .map((info) => {
      const mine = info.handle === session.handle;
      return (
        `<tr class="session" data-handle="${escapeHtml(info.handle)}"><td>${mine ? '<strong class="this-device">this device</strong>' : 'another device'}</td>` +
        `<td>${time(info.createdAt)}</td><td>${time(info.touchedAt)}</td><td>${time(info.expiresAt)}</td><td>${mine ? '' : `<form method="post" action="/revoke"><input type="hidden" name="handle" value="${escapeHtml(info.handle)}"><button class="revoke">Revoke</button></form>`}</td></tr>`
      );
    })
    .join('');
  return `<p id="owner">Logged in as <strong>${escapeHtml(session.owner)}</strong>.</p>
  <table id="sessions"><tr><th>device</th><th>created (UTC)</th><th>last used (UTC)</th><th>expires if unused (UTC)</th><th></th></tr>${rows}</table>
  <form method="post" action="/logout-others"><button id="logout-others">Log out other devices</button></form>`;
}

/**
 * A few of app.metrics()'s figures for the status panel, read from the text
 * as a scraper would: each sample's value summed by name (over its labels),
 * and the store calls that did not end `ok`.
 */
function figures(text: string) {
  const sums = new Map<string, number>();
  let failed = 0;
  for (const line of text.split('\n')) {
    const match = /^supervised_sessions_(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    sums.set(match[1], (sums.get(match[1]) ?? 0) + value);
    if (match[1] === 'store_calls_total' && !match[2]?.includes('outcome="ok"')) failed += value;
  }
  const get = (name: string) => sums.get(name) ?? 0;
  const ratio = (a: number, b: number, digits: number) => (b > 0 ? (a / b).toFixed(digits) : '–');
  return {
    calls: get('store_calls_total'),
    failed,
    meanMs: ratio(1000 * get('store_call_seconds_sum'), get('store_call_seconds_count'), 2),
    perTransaction: ratio(get('batch_calls_sum'), get('batch_calls_count'), 2),
    pending: get('mailbox_pending'),
    live: sums.has('live_sessions') ? String(get('live_sessions')) : '–',
  };
}

function page(app: SessionApp, session: Session, visits: number, list: SessionInfo[]): string {
  const status = app.status();
  const f = figures(app.metrics());
  const sweep = app.lastSweep;
  const name = session.get('name') as string | undefined;
  const rows = (['store', 'cleaner'] as const)
    .map((child) => {
      const c = status.children[child];
      return `<tr><td>${child}</td><td class="state">${c.state}</td><td>${c.restarts}</td><td>${c.threadId ?? '–'}</td></tr>`;
    })
    .join('');
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
  <p id="greeting">${name ? `Hello, ${escapeHtml(name)}!` : 'No name stored yet.'}</p>
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
  <table id="figures">
    <tr><th>store calls</th><td id="fig-calls">${f.calls}</td><th>failed</th><td id="fig-failed">${f.failed}</td></tr>
    <tr><th>mean call (ms)</th><td id="fig-mean">${f.meanMs}</td><th>calls per transaction</th><td id="fig-batch">${f.perTransaction}</td></tr>
    <tr><th>waiting now</th><td id="fig-pending">${f.pending}</td><th>live sessions (last sweep)</th><td id="fig-live">${f.live}</td></tr>
  </table>
  <p>All figures: <a href="/metrics">/metrics</a>.</p>
  <p id="last-sweep">Last sweep: ${sweep ? `${sweep.deleted} deleted in ${sweep.durationMs.toFixed(1)} ms (${sweep.trigger})` : 'none yet'}</p>
</section>
</body></html>`;
}

/** The form body, or null when it is over `limit` bytes (nothing more of it is read). */
export function readForm(req: IncomingMessage, limit = 4096): Promise<URLSearchParams | null> {
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

/**
 * A state-changing request made by this site's own page: browsers send
 * Sec-Fetch-Site (same-origin) or at least Origin; another site's form or
 * image cannot pass as ours. Tools that send neither (curl, the drills) are
 * not a browser a page could drive.
 */
export function sameOrigin(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}

/** An answer, for the server to write in its framework's way. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const text = (status: number, body: string, extra: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', ...extra },
  body,
});
const redirect = (): Answer => ({ status: 303, headers: { location: '/' }, body: '' });

/** The routes whose POST carries a form. */
export const FORM_PATHS = new Set(['/name', '/login', '/revoke']);

/**
 * Every route but /admin/*: `form` is the POSTed form (null when it was over
 * the limit: a 413). State-changing requests from another site are refused.
 */
export async function route(
  app: SessionApp,
  session: Session,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  form: URLSearchParams | null,
): Promise<Answer> {
  if (method === 'POST' && !sameOrigin(headers)) return text(403, 'cross-site request refused\n');
  if (method === 'POST' && FORM_PATHS.has(path) && form === null) return text(413, 'form too large\n', { connection: 'close' });
  if (method === 'GET' && path === '/') {
    const visits = ((session.get('visits') as number | undefined) ?? 0) + 1;
    session.set('visits', visits);
    const list = session.owner === null ? [] : await app.store.sessionsOf(session.owner);
    return {
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
      body: page(app, session, visits, list),
    };
  }
  // A JSON counter for load tools and drills: read-modify-write of `n`.
  if (path === '/counter') {
    const n = ((session.get('n') as number | undefined) ?? 0) + (method === 'POST' ? 1 : 0);
    if (method === 'POST') session.set('n', n);
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) };
  }
  if (method === 'POST' && path === '/name') {
    const name = form!.get('name')?.trim().slice(0, 100);
    if (name) session.set('name', name);
    return redirect();
  }
  if (method === 'POST' && path === '/login') {
    let user = form!.get('user')?.trim().slice(0, 256);
    // A cut through a surrogate pair would not be a valid owner.
    if (user && !user.isWellFormed()) user = user.slice(0, -1);
    if (user) {
      // A login: a new id against fixation, and the session now belongs to the user.
      session.renew();
      session.setOwner(user);
      // "Remember me": a lifetime of its own, and a persistent cookie to match;
      // without it, the app's maxAge (whatever lifetime the session had before).
      session.setMaxAge(form!.get('remember') === '1' ? 30 * 86400 : null);
    }
    return redirect();
  }
  if (method === 'POST' && path === '/revoke' && session.owner !== null) {
    // Only a session of this user: a handle of someone else's is not found.
    await app.store.revoke(session.owner, form!.get('handle') ?? '');
    return redirect();
  }
  if (method === 'POST' && path === '/logout-others') {
    // Every other session of this user ends with the commit, before the redirect goes out.
    session.revokeOtherSessions();
    return redirect();
  }
  if (method === 'POST' && path === '/renew') {
    session.renew();
    return redirect();
  }
  if (method === 'POST' && path === '/logout') {
    session.drop();
    return redirect();
  }
  return text(404, 'not found\n');
}
