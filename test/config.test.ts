// Config validation (before any worker starts), table errors and the helpers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import {
  startSessionApp,
  setupStore,
  clearStore,
  dropStore,
  ConfigError,
  SessionError,
  TableExistsError,
  TableNotExistsError,
} from '../src/index.ts';
import { sleep, tempDir } from './helpers.ts';
import Fastify from 'fastify';
import { createHandler } from '../src/index.ts';
import { sessions } from '../src/http/express.ts';
import { fastifySessions } from '../src/http/fastify.ts';
import { withSessions } from '../src/http/web.ts';

const temp = tempDir();
const database = join(temp.dir, 'never-created.db');

async function refused(config: unknown, key: string, pattern?: RegExp) {
  const error = await startSessionApp({ database, ...(config as object) } as never).catch((e: unknown) => e);
  assert.instance(error, ConfigError, `${JSON.stringify(config)} must be refused`);
  assert.instance(error, SessionError);
  assert.is((error as ConfigError).code, 'ERR_SESSION_CONFIG');
  assert.is((error as ConfigError).key, key);
  assert.ok((error as Error).message.includes(key), `the message names "${key}": ${(error as Error).message}`);
  if (pattern) assert.match((error as Error).message, pattern);
  assert.not.ok(existsSync(database), 'no worker ran: the database file was never created');
}

test('bad values are refused with a ConfigError naming the key, the value and what is expected', async () => {
  await refused({ database: '' }, 'database');
  await refused({ database: 42 }, 'database');
  await refused({ table: 'bad-name' }, 'table', /"bad-name"/);
  await refused({ table: 'x; DROP TABLE y' }, 'table');
  await refused({ table: `a${'b'.repeat(63)}` }, 'table');
  await refused({ table: '1abc' }, 'table');
  await refused({ maxAge: 0 }, 'maxAge', /positive finite number of seconds, got 0/);
  await refused({ maxAge: -1 }, 'maxAge');
  await refused({ maxAge: Infinity }, 'maxAge');
  await refused({ maxAge: NaN }, 'maxAge');
  await refused({ maxAge: '60' }, 'maxAge', /got "60"/);
  await refused({ timestamp: 'sliding' }, 'timestamp', /'relative' or 'fixed'/);
  await refused({ cleanerInterval: 0 }, 'cleanerInterval');
  await refused({ sweepSignal: 'SIGNOPE' }, 'sweepSignal');
  await refused({ sweepSignal: 'SIGKILL' }, 'sweepSignal', /cannot|can be caught/);
  await refused({ sweepSignal: 'SIGSTOP' }, 'sweepSignal');
  await refused({ sweepSignal: true }, 'sweepSignal');
  await refused({ autoSetup: 'yes' }, 'autoSetup');
  await refused({ restart: 3 }, 'restart');
  await refused({ restart: { intensity: -1 } }, 'restart.intensity');
  await refused({ restart: { intensity: 1.5 } }, 'restart.intensity');
  await refused({ restart: { period: 0 } }, 'restart.period');
  await refused({ shutdownTimeout: -5 }, 'shutdownTimeout');
  await refused({ requestTimeout: 0 }, 'requestTimeout');
  await refused({ durability: 'extra' }, 'durability');
  await refused({ maxSessionBytes: 0 }, 'maxSessionBytes');
  await refused({ maxSessionBytes: 10.5 }, 'maxSessionBytes');
  await refused({ touchAfter: -1 }, 'touchAfter');
  await refused({ maxLifetime: 0 }, 'maxLifetime');
  await refused({ maxPendingCalls: 0 }, 'maxPendingCalls');
  await refused({ maxPendingCalls: 2.5 }, 'maxPendingCalls');
  await refused({ maxPendingCalls: '100' }, 'maxPendingCalls');
  await refused({ maxSessionsPerOwner: 0 }, 'maxSessionsPerOwner');
  await refused({ maxSessionsPerOwner: 1.5 }, 'maxSessionsPerOwner');
});

test('cross-key rules: touchAfter must be below maxAge (or sliding expiry would never slide)', async () => {
  await refused({ maxAge: 60, touchAfter: 60 }, 'touchAfter', /below maxAge \(60\)/);
  await refused({ maxAge: 60, touchAfter: 600 }, 'touchAfter');
  await refused({ touchAfter: 86400 }, 'touchAfter');
});

test('a database path that cannot be opened is a ConfigError naming database, for the helpers too', async () => {
  const missing = join(temp.dir, 'no-such-folder', 'x.db');
  for (const helper of [setupStore, clearStore, dropStore]) {
    const error = await helper({ database: helper === setupStore ? missing : temp.dir }).catch((e: unknown) => e);
    assert.instance(error, ConfigError, `${helper.name}: ${String(error)}`);
    assert.is((error as ConfigError).key, 'database');
    assert.match((error as Error).message, /cannot open/);
  }
});

test('unknown keys are refused at any depth, with a suggestion for a typo', async () => {
  await refused({ maxage: 60 }, 'maxage', /did you mean "maxAge"/);
  await refused({ restart: { periode: 5 } }, 'restart.periode', /did you mean "period"/);
  await refused({ cleanup: true }, 'cleanup');
});

test('a non-object config is refused', async () => {
  for (const config of [null, 'sessions.db', 42, [], new Map()]) {
    const error = await startSessionApp(config as never).catch((e: unknown) => e);
    assert.instance(error, ConfigError);
  }
});

test('accepted edge values: fractions, touchAfter 0, sweepSignal false, a partial restart object', async () => {
  const app = await startSessionApp({
    database: join(temp.dir, 'edge.db'),
    maxAge: 0.5,
    touchAfter: 0,
    cleanerInterval: 0.25,
    sweepSignal: false,
    restart: { intensity: 5 },
    maxLifetime: 1.5,
    maxSessionBytes: 100,
    durability: 'full',
  });
  try {
    assert.equal(app.config.restart, { intensity: 5, period: 5 }, 'the partial nested object keeps the other default');
    assert.is(app.config.touchAfter, 0);
    assert.is(app.status().state, 'running');
  } finally {
    await app.stop();
  }
});

test('defaults: as docs/store.md states them', async () => {
  const dir = tempDir();
  const cwd = process.cwd();
  process.chdir(dir.dir);
  try {
    const app = await startSessionApp({ sweepSignal: false });
    try {
      const { config } = app;
      assert.equal(
        { ...config, restart: { ...config.restart } },
        {
          database: 'sessions.db',
          table: 'session',
          maxAge: 86400,
          timestamp: 'relative',
          cleanerInterval: 60,
          sweepSignal: false,
          autoSetup: true,
          restart: { intensity: 3, period: 5 },
          shutdownTimeout: 5000,
          requestTimeout: 5000,
          durability: 'normal',
          maxSessionBytes: 65536,
          touchAfter: 60,
          maxLifetime: null,
          maxPendingCalls: 10000,
          maxSessionsPerOwner: null,
        },
      );
      assert.ok(existsSync(join(dir.dir, 'sessions.db')), 'sessions.db in the working directory');
    } finally {
      await app.stop();
    }
    const small = await startSessionApp({ maxAge: 100, sweepSignal: false });
    assert.is(small.config.touchAfter, 5, 'touchAfter defaults to min(60, maxAge / 20)');
    await small.stop();
  } finally {
    process.chdir(cwd);
    dir.remove();
  }
});

test('autoSetup false: a missing table rejects with TableNotExistsError', async () => {
  const file = join(temp.dir, 'no-table.db');
  const error = await startSessionApp({ database: file, autoSetup: false, sweepSignal: false }).catch((e: unknown) => e);
  assert.instance(error, TableNotExistsError);
  assert.is((error as TableNotExistsError).code, 'ERR_SESSION_TABLE_NOT_EXISTS');
  await setupStore({ database: file });
  const app = await startSessionApp({ database: file, autoSetup: false, sweepSignal: false });
  assert.is(app.status().state, 'running');
  await app.stop();
});

test('a table of that name with other columns: TableExistsError, and its rows are left alone', async () => {
  const file = join(temp.dir, 'foreign.db');
  const db = new DatabaseSync(file);
  db.exec("CREATE TABLE session (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO session (name) VALUES ('keep me')");
  db.close();
  const error = await startSessionApp({ database: file, sweepSignal: false }).catch((e: unknown) => e);
  assert.instance(error, TableExistsError);
  assert.is((error as TableExistsError).code, 'ERR_SESSION_TABLE_EXISTS');
  for (const helper of [setupStore, clearStore, dropStore]) {
    assert.instance(await helper({ database: file }).catch((e: unknown) => e), TableExistsError);
  }
  const check = new DatabaseSync(file);
  assert.equal(
    check
      .prepare('SELECT name FROM session')
      .all()
      .map((row) => row.name),
    ['keep me'],
  );
  check.close();
});

test('helpers: setup is idempotent; clear empties; drop drops; missing table or file is nothing to do', async () => {
  const file = join(temp.dir, 'helpers.db');
  await clearStore({ database: file });
  await dropStore({ database: file });
  assert.not.ok(existsSync(file), 'clear/drop on a missing file create nothing');
  await setupStore({ database: file, table: 'web_sessions' });
  await setupStore({ database: file, table: 'web_sessions' });
  const app = await startSessionApp({ database: file, table: 'web_sessions', autoSetup: false, sweepSignal: false });
  await app.store.put(null, { a: 1 });
  assert.is(await app.store.count(), 1);
  await app.stop();
  await clearStore({ database: file, table: 'web_sessions' });
  const db = new DatabaseSync(file);
  assert.is(db.prepare('SELECT count(*) AS n FROM web_sessions').get()!.n, 0);
  db.close();
  await dropStore({ database: file, table: 'web_sessions' });
  await dropStore({ database: file, table: 'web_sessions' });
  await clearStore({ database: file, table: 'web_sessions' });
  const after = new DatabaseSync(file);
  assert.is(after.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE name = 'web_sessions'`).get()!.n, 0);
  after.close();
});

test('helpers take only database and table, validated like startSessionApp', async () => {
  for (const helper of [setupStore, clearStore, dropStore]) {
    const unknown = await helper({ database: join(temp.dir, 'x.db'), maxAge: 5 } as never).catch((e: unknown) => e);
    assert.instance(unknown, ConfigError);
    assert.is((unknown as ConfigError).key, 'maxAge');
    const badTable = await helper({ table: 'no good' }).catch((e: unknown) => e);
    assert.instance(badTable, ConfigError);
    assert.is((badTable as ConfigError).key, 'table');
  }
});

test('durations past 24.8 days are honoured, not clamped to 1 ms by Node timers', async () => {
  const day = 86400;
  const app = await startSessionApp({
    database: join(temp.dir, 'long.db'),
    sweepSignal: false,
    cleanerInterval: 30 * day,
    requestTimeout: 40 * day * 1000,
    shutdownTimeout: 30 * day * 1000,
  });
  try {
    const sweeps: unknown[] = [];
    app.on('sweep', (report) => sweeps.push(report));
    const id = await app.store.put(null, { a: 1 });
    assert.equal(await app.store.get(id!), { a: 1 }, 'calls do not time out at once');
    await sleep(300);
    assert.is(sweeps.length, 0, 'a 30-day interval does not sweep every millisecond');
  } finally {
    await app.stop();
  }
});

test('footguns refused with a hint: database present but unset, lifetimes in milliseconds, keys of other stores', async () => {
  // database: process.env.DATABASE_URL with the variable unset must not quietly mean sessions.db.
  await refused({ database: undefined }, 'database', /it is undefined \(an environment variable not set\?\); set DATABASE_URL/);
  await refused({ database: '' }, 'database', /it is an empty string .*leave the key out for sessions\.db/);
  for (const helper of [setupStore, clearStore, dropStore]) {
    const error = await helper({ database: undefined }).catch((e: unknown) => e);
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, /set DATABASE_URL/);
  }
  // express-session counts milliseconds: a day there is 1,000 days here.
  await refused({ maxAge: 86_400_000 }, 'maxAge', /86400000 seconds is 1000 days, .*milliseconds\? maxAge counts seconds/);
  await refused({ maxLifetime: 401 * 86400 }, 'maxLifetime', /401 days.*milliseconds\?/);
  await refused({ ttl: 3600 }, 'ttl', /the session lifetime is "maxAge", in seconds/);
  await refused({ tableName: 'sessions' }, 'tableName', /the table is "table"/);
  await refused({ conString: 'postgres://x/y' }, 'conString', /a PostgreSQL URL goes in "database"/);
  await refused({ secret: 's3cret' }, 'secret', /an option of createHandler and of the front doors/);
  await refused({ cookie: { maxAge: 1 } }, 'cookie', /an option of createHandler/);
  // A Redis Cluster has no database number: refused, never a quiet SQLite file named after it; its password is not echoed.
  for (const url of ['redis+cluster://app:hunter2@a:7000,b:7001/1', 'rediss+cluster://a:7000/0']) {
    await refused(
      { database: url },
      'database',
      /is not a usable Redis URL: a Redis Cluster has no database number \(leave the path out\)/,
    );
    const error = await startSessionApp({ database: url }).catch((e: unknown) => e);
    assert.not.match((error as Error).message, /hunter2/);
  }
  // A Redis URL that cannot be used is refused before any worker starts, naming what is wrong.
  for (const [url, problem] of [
    ['redis://app:hunter2@cache:6379/zz', /the path "\/zz" is not a database number/],
    ['redis://a:1,b:2', /it names several hosts: a Redis Cluster is given as redis\+cluster:\/\//],
    ['rediss://cache:6380?waitReplicas=many', /waitReplicas must be a whole number of replicas/],
    ['redis://cache:6379?password=hunter2', /it has the parameter "password"; the only one taken is waitReplicas/],
    ['redis://cache:99999', /port 99999 is out of range/],
  ] as const) {
    await refused({ database: url }, 'database', problem);
    const error = await startSessionApp({ database: url }).catch((e: unknown) => e);
    assert.not.match((error as Error).message, /hunter2/);
  }
  await refused({ database: 'mysql://db/app' }, 'database', /is a mysql:\/\/ URL, which no engine of this release takes/);
  await refused({ database: 'file:///srv/sessions.db' }, 'database', /give the SQLite file as a plain path/);
  // Whatever the form of the credentials (a '/' or an '@' in the password, a user alone, a query, a host list), none is shown.
  for (const [url, shown] of [
    // Each refused for its path or query, before any connection.
    ['redis://:ab/cd-secret@h:6379/x', 'redis://***@h:6379/x'],
    ['redis://u:p@ss-secret@h/x', 'redis://***@h/x'],
    ['redis://token-secret@h/x', 'redis://***@h/x'],
    ['redis://:pa?ss#-secret@h:6379/x', 'redis://***@h:6379/x'],
    ['redis://h:6379/0?password=q-secret', 'redis://h:6379/0?password=***'],
    ['redis+cluster://u:s1-secret@a:7000,u:s2-secret@b:7001/0', 'redis+cluster://***@b:7001/0'],
  ] as const) {
    const error = (await startSessionApp({ database: url }).catch((e: unknown) => e)) as Error;
    assert.instance(error, ConfigError);
    assert.not.match(error.message, /secret/, url);
    assert.ok(error.message.includes(JSON.stringify(shown)), `${url} shown as ${shown}: ${error.message}`);
  }
  for (const helper of [setupStore, clearStore, dropStore]) {
    const error = await helper({ database: 'redis+cluster://cache:7000/1' }).catch((e: unknown) => e);
    assert.instance(error, ConfigError);
  }
  // The largest accepted: 400 days.
  const app = await startSessionApp({ database: join(temp.dir, 'cap.db'), sweepSignal: false, maxAge: 400 * 86400 });
  await app.stop();
});

test('front-door options carried over from express-session are refused with what to use instead, on every front door', async () => {
  const app = await startSessionApp({ database: join(temp.dir, 'doors.db'), sweepSignal: false });
  try {
    const doors: Array<[string, (options: object) => unknown]> = [
      ['createHandler', (options) => createHandler(app.store, () => {}, options)],
      ['sessions', (options) => sessions(app.store, options)],
      ['withSessions', (options) => withSessions(app.store, () => new Response(), options)],
      [
        'fastifySessions',
        async (options) => {
          const fastify = Fastify();
          try {
            await fastify.register(fastifySessions, { store: app.store, ...options });
            await fastify.ready();
          } finally {
            await fastify.close();
          }
        },
      ],
    ];
    for (const [door, make] of doors) {
      for (const [options, key, pattern] of [
        [
          { cookie: { maxAge: 86_400_000 } },
          'cookie.maxAge',
          /86400000 seconds is 1000 days, .*milliseconds\? cookie\.maxAge counts seconds/,
        ],
        [{ cookie: { maxAge: 400 * 86400 + 1 } }, 'cookie.maxAge', /more than the 400 days/],
        [{ name: 'connect.sid' }, 'name', /express-session's cookie name is "key" here/],
        [{ resave: false }, 'resave', /not needed: a session is stored only when it changed/],
        [{ saveUninitialized: false }, 'saveUninitialized', /not needed/],
        [{ rolling: true }, 'rolling', /the cookie slides with the session/],
        [{ proxy: true }, 'proxy', /"trustProxy" here/],
        [{ cookie: { expires: new Date() } }, 'cookie.expires', /use cookie\.maxAge, in seconds/],
        [{ cookieName: 'sid' }, 'cookieName', /"key" here/],
      ] as const) {
        const error = await (async () => make(options))().then(
          () => null,
          (e: unknown) => e,
        );
        assert.instance(error, ConfigError, `${door} ${JSON.stringify(options)}`);
        assert.is((error as ConfigError).key, key, door);
        assert.match((error as Error).message, pattern);
        assert.match((error as Error).message, new RegExp(`^(invalid|unknown) ${door} option "${key.replace('.', '\\.')}"`));
      }
      // 400 days is accepted.
      await (async () => make({ cookie: { maxAge: 400 * 86400 } }))();
    }
  } finally {
    await app.stop();
  }
});

test.after(() => temp.remove());
test.run();
