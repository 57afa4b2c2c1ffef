// The published types, as a TypeScript user meets them: a consumer file that
// uses req.session (Express) and request.session (Fastify) compiles under
// `tsc --strict` against the built .d.ts, through the package's exports; and
// a misuse does not compile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the checkout (git-ignored), so that the consumer resolves the frameworks from node_modules.
const project = join(root, '.tmp', `types-test-${process.pid}`);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
test.after(() => rmSync(project, { recursive: true, force: true }));

const CONSUMER = `
import express from 'express';
import Fastify from 'fastify';
import { startSessionApp, type Session } from 'supervised-sessions';
import { sessions } from 'supervised-sessions/express';
import fastifySessions from 'supervised-sessions/fastify';
import { SessionAppStore } from 'supervised-sessions/express-session';
import Koa from 'koa';
import { sessions as koaSessions } from 'supervised-sessions/koa';
import { Hono } from 'hono';
import { sessions as honoSessions, type SessionEnv } from 'supervised-sessions/hono';
import { withSessions } from 'supervised-sessions/web';

const app = await startSessionApp({ maxSessionsPerOwner: 5 });

const koa = new Koa();
koa.use(koaSessions(app.store, { cookie: { secure: true, partitioned: true, priority: 'high' }, touch: (ctx) => ctx.path !== '/poll' }));
koa.use(async (ctx) => {
  const user: string | null = (ctx.session.get('user') as string | undefined) ?? null;
  ctx.session.set('seen', Date.now());
  ctx.body = { user, id: ctx.session.id };
});

const hono = new Hono<SessionEnv>();
hono.use(honoSessions(app.store, { touch: (c) => c.req.path !== '/poll', onError: (error, c) => console.log(error.message, c.req.path) }));
hono.get('/', (c) => {
  const session: Session = c.var.session;
  c.get('session').set('visits', 1);
  return c.json({ isNew: session.isNew });
});
// Chained after .use(sessions(…)), an untyped app knows c.var.session too.
new Hono().use(honoSessions(app.store)).get('/', (c) => c.text(String(c.var.session.isNew)));

const fetchHandler: (request: Request) => Promise<Response> = withSessions(
  app.store,
  (request, session) => Response.json({ path: new URL(request.url).pathname, isNew: session.isNew }),
  { touch: (request) => !request.url.endsWith('/poll') },
);
console.log(fetchHandler);

const web = express();
web.use(sessions(app.store, { secret: ['new', 'old'], cookie: { secure: 'auto', maxAge: 3600 }, trustProxy: true }));
web.get('/', (req, res) => {
  const visits: number = ((req.session.get('visits') as number | undefined) ?? 0) + 1;
  req.session.set('visits', visits);
  const owner: string | null = req.session.owner;
  const handle: string | null = req.session.handle;
  res.json({ visits, owner, handle });
});

const fastify = Fastify();
await fastify.register(fastifySessions, { store: app.store, key: 'sid' });
fastify.get('/', async (request) => {
  const session: Session = request.session;
  session.setOwner('ada');
  session.setMaxAge(30 * 86400);
  session.renew();
  const lifetime: number | null = session.maxAge;
  return { id: session.id, isNew: session.isNew, lifetime };
});

const dropIn: SessionAppStore = new SessionAppStore(app.store);
dropIn.length((error, n) => console.log(error, n));
const remembered: string | null = await app.store.put(null, { user: 'ada' }, { owner: 'ada', maxAge: 30 * 86400 });
await app.store.patch(remembered!, { maxAge: null });
const mine = await app.store.sessionsOf('ada');
const first: number = mine[0]?.expiresAt ?? 0;
console.log(first);
`;

const MISUSE = `
import express from 'express';
import { startSessionApp } from 'supervised-sessions';
import { sessions } from 'supervised-sessions/express';
const app = await startSessionApp();
const web = express();
web.use(sessions(app.store, { cookie: { secure: 'sometimes' } }));
web.get('/', (req) => { req.session.set('when', new Date()); });
import Koa from 'koa';
import { sessions as koaSessions } from 'supervised-sessions/koa';
new Koa().use(koaSessions(app.store, { cookie: { priority: 'urgent' } }));
`;

function compile(file: string): { status: number | null; output: string } {
  const result = spawnSync(
    process.execPath,
    [
      tsc,
      '--strict',
      '--noEmit',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2023',
      '--skipLibCheck',
      '--types',
      'node',
      join(project, file),
    ],
    { cwd: project, encoding: 'utf8' },
  );
  return { status: result.status, output: result.stdout + result.stderr };
}

test('a consumer using req.session (Express), request.session (Fastify), ctx.session (Koa), c.var.session (Hono) and a fetch handler compiles under --strict against the built .d.ts', () => {
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'types-consumer', private: true, type: 'module' }));
  // express-session's own types, for the migration snippet (installed first:
  // npm prunes what it did not install). They declare req.session too, and
  // are loaded only where 'express-session' is imported.
  const install = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '@types/express-session@1.19.0'], {
    cwd: project,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.is(install.status, 0, install.stderr);
  const pkg = join(project, 'node_modules', 'supervised-sessions');
  mkdirSync(pkg, { recursive: true });
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], {
    encoding: 'utf8',
  });
  assert.is(build.status, 0, build.stdout + build.stderr);
  copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
  writeFileSync(join(project, 'consumer.ts'), CONSUMER);
  const ok = compile('consumer.ts');
  assert.is(ok.status, 0, ok.output);
});

test('and misuse does not compile: a bad cookie.secure, a Date in the session, a cookie.priority browsers do not know', () => {
  writeFileSync(join(project, 'misuse.ts'), MISUSE);
  const bad = compile('misuse.ts');
  assert.is.not(bad.status, 0);
  assert.match(bad.output, /"sometimes"/);
  assert.match(bad.output, /Date/);
  assert.match(bad.output, /"urgent"/);
});

const MIGRATION = `
import express from 'express';
import session from 'express-session';
import { startSessionApp } from 'supervised-sessions';
import { SessionAppStore } from 'supervised-sessions/express-session';
const app = await startSessionApp();
const web = express();
web.use(session({ store: new SessionAppStore(app.store), secret: 's', resave: false, saveUninitialized: false, rolling: true }));
web.get('/', (req, res) => { req.session.regenerate(() => res.send(req.sessionID)); });
`;

test("the drop-in store is a Store for @types/express-session (the migration guide's snippet compiles)", () => {
  writeFileSync(join(project, 'migration.ts'), MIGRATION);
  const ok = compile('migration.ts');
  assert.is(ok.status, 0, ok.output);
});

test.run();
