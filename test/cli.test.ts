// The command line, run as a user runs it: the package.json bin, in a child process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { startSessionApp } from '../src/index.ts';
import { runScript, tempDir } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = join(root, pkg.bin['supervised-sessions']);
const temp = tempDir();
const cli = (...args: string[]) => runScript(bin, args, { cwd: temp.dir });

test('--help prints the usage and exits 0', async () => {
  const result = await cli('--help');
  assert.is(result.code, 0);
  assert.match(result.stdout, /usage: supervised-sessions/);
  for (const command of ['setup', 'clear', 'drop', 'stats', 'sweep', 'sessions', 'revoke'])
    assert.match(result.stdout, new RegExp(`\\b${command}\\b`));
});

test('setup says what it created, and is idempotent', async () => {
  const first = await cli('setup', '--database', 'cli.db');
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stdout, /created table "session" in cli\.db/);
  const second = await cli('setup', '--database', 'cli.db');
  assert.is(second.code, 0);
  assert.match(second.stdout, /already exists/);
});

test('stats prints live, dead and bytes; sweep deletes the dead and prints how many', async () => {
  const database = join(temp.dir, 'stats.db');
  const app = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
  for (let i = 0; i < 4; i++) await app.store.put(null, { old: true, i });
  for (let i = 0; i < 3; i++) await app.store.put(null, { old: false, i });
  await app.stop();
  // Four sessions last used two hours ago: dead at a one-hour max age, live at
  // the default day (no sleeping, so no race with a slow CLI start).
  const aged = new DatabaseSync(database);
  aged
    .prepare(
      `UPDATE session SET created_at = created_at - 7200000, touched_at = touched_at - 7200000 WHERE json_extract(data, '$.old') = 1`,
    )
    .run();
  aged.close();
  const stats = await cli('stats', '--database', 'stats.db', '--max-age', '3600');
  assert.is(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^live: 3$/m);
  assert.match(stats.stdout, /^dead: 4$/m);
  const bytes = Number(/^bytes: (\d+)$/m.exec(stats.stdout)?.[1]);
  assert.ok(bytes >= 4096, `bytes: ${bytes}`);
  // With the default max age (a day) nothing is dead yet.
  const defaults = await cli('stats', '--database=stats.db');
  assert.match(defaults.stdout, /^live: 7$/m);
  const sweep = await cli('sweep', '--database', 'stats.db', '--max-age', '3600');
  assert.is(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stdout, /^deleted: 4$/m);
  const after = await cli('stats', '--database', 'stats.db', '--max-age', '3600');
  assert.match(after.stdout, /^live: 3$/m);
  assert.match(after.stdout, /^dead: 0$/m);
});

test('clear and drop; on a missing table they have nothing to do', async () => {
  await cli('setup', '--database', 'cd.db', '--table', 'web');
  const clear = await cli('clear', '--database', 'cd.db', '--table', 'web');
  assert.is(clear.code, 0, clear.stderr);
  assert.match(clear.stdout, /cleared/);
  const drop = await cli('drop', '--database', 'cd.db', '--table', 'web');
  assert.is(drop.code, 0);
  assert.match(drop.stdout, /dropped table "web"/);
  const again = await cli('drop', '--database', 'cd.db', '--table', 'web');
  assert.is(again.code, 0);
  assert.match(again.stdout, /nothing to drop/);
  const db = new DatabaseSync(join(temp.dir, 'cd.db'));
  assert.is(db.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE name = 'web'`).get()!.n, 0);
  db.close();
});

const failures: Array<[string, string[], RegExp]> = [
  ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
  ['no command', [], /no command/],
  ['an unknown flag', ['stats', '--maxage', '5'], /unknown option --maxage/],
  ['a flag without its value', ['stats', '--database'], /--database needs a value/],
  ['a bad number', ['stats', '--max-age', 'soon'], /invalid --max-age/],
  ['a bad timestamp', ['stats', '--timestamp', 'sliding'], /invalid --timestamp.*'relative' or 'fixed'/],
  ['a bad table name', ['setup', '--table', 'a;b'], /invalid --table/],
  ['stats on a missing file', ['stats', '--database', 'missing.db'], /no database file missing\.db/],
  ['sweep on a missing file', ['sweep', '--database', 'missing.db', '--max-age', '60'], /no database file/],
  ['stats on a missing table', ['stats', '--database', 'cli.db', '--table', 'nope'], /table "nope" does not exist/],
];

for (const [what, args, message] of failures) {
  test(`${what}: one clear line on stderr, no stack trace, a non-zero exit`, async () => {
    const result = await cli(...args);
    assert.ok(result.code !== 0 && result.code !== null, `exit code ${result.code}`);
    assert.match(result.stderr, message);
    assert.not.match(result.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(result.stderr.trim().split('\n').length <= 2, result.stderr);
  });
}

test('a table of another shape: refused, with its rows left alone', async () => {
  const file = join(temp.dir, 'other.db');
  const db = new DatabaseSync(file);
  db.exec("CREATE TABLE session (x TEXT); INSERT INTO session VALUES ('keep')");
  db.close();
  for (const command of ['setup', 'clear', 'drop', 'stats', 'sweep']) {
    const result = await cli(command, '--database', 'other.db', '--max-age', '3600');
    assert.is(result.code, 1, `${command}: ${result.stdout}`);
    assert.match(result.stderr, /other columns/);
  }
  const check = new DatabaseSync(file);
  assert.is(check.prepare('SELECT count(*) AS n FROM session').get()!.n, 1);
  check.close();
  assert.ok(existsSync(file));
});

test.after(() => temp.remove());
test('sessions --owner lists the live sessions (handle, created, last used, expires); revoke ends one, or all', async () => {
  const database = join(temp.dir, 'owners.db');
  const app = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await app.store.put(null, { i }, { owner: 'ada@example.com' }));
  const grace = await app.store.put(null, { i: 9 }, { owner: 'grace' });
  const handles = (await app.store.sessionsOf('ada@example.com')).map((s) => s.handle);
  await app.stop();
  const list = await cli('sessions', '--owner', 'ada@example.com', '--database', 'owners.db');
  assert.is(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.is(lines.length, 3);
  for (const [i, line] of lines.entries()) {
    assert.match(
      line,
      /^h[A-Za-z0-9_-]{43} {2}created \d{4}-\d\d-\d\dT[\d:.]+Z {2}last used \d{4}-\d\d-\d\dT[\d:.]+Z {2}expires \d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    assert.is(line.split(' ')[0], handles[i]);
  }
  assert.not.ok(list.stdout.includes(ids[0]!), 'never an id');
  const one = await cli('revoke', '--owner', 'ada@example.com', '--handle', handles[0], '--database', 'owners.db');
  assert.is(one.stdout.trim(), 'revoked: 1', one.stderr);
  const foreign = await cli('revoke', '--owner', 'grace', '--handle', handles[1], '--database', 'owners.db');
  assert.is(foreign.stdout.trim(), 'revoked: 0', "another owner's handle ends nothing");
  const wrong = await cli('revoke', '--owner', 'ada@example.com', '--handle', 'nonsense', '--database', 'owners.db');
  assert.is(wrong.stdout.trim(), 'revoked: 0');
  const all = await cli('revoke', '--owner', 'ada@example.com', '--database', 'owners.db');
  assert.is(all.stdout.trim(), 'revoked: 2');
  assert.is((await cli('sessions', '--owner', 'ada@example.com', '--database', 'owners.db')).stdout, '');
  const check = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
  assert.equal(await check.store.get(grace!), { i: 9 }, "grace's session untouched");
  await check.stop();
});

test('sessions/revoke: --owner required and validated, --handle only with revoke; one-line errors', async () => {
  for (const [args, message] of [
    [['sessions', '--database', 'owners.db'], /sessions needs --owner ID/],
    [['revoke', '--database', 'owners.db'], /revoke needs --owner ID/],
    [['sessions', '--owner', '', '--database', 'owners.db'], /invalid --owner: expected a non-empty string of at most 256 characters/],
    [['sessions', '--owner', 'x'.repeat(257)], /invalid --owner/],
    [['sessions', '--owner', 'ada', '--handle', 'h'], /--handle does not go with sessions/],
    [['stats', '--owner', 'ada'], /--owner does not go with stats/],
  ] as const) {
    const result = await cli(...args);
    assert.is(result.code, 2, args.join(' '));
    assert.match(result.stderr, message);
    assert.not.match(result.stderr, /\n\s+at /, 'no stack trace');
  }
});

test("sweep refuses to guess the app's maxAge; stats and sessions say which settings they judged by", async () => {
  const database = join(temp.dir, 'guess.db');
  const app = await startSessionApp({ database, sweepSignal: false, maxAge: 30 * 86400, cleanerInterval: 3600 });
  await app.store.put(null, { a: 1 }, { owner: 'ada' });
  await app.stop();
  // Two days unused: live for this app (30 days), dead by the CLI's default (a day).
  const aged = new DatabaseSync(database);
  aged.prepare('UPDATE session SET created_at = created_at - 172800000, touched_at = touched_at - 172800000').run();
  aged.close();
  const sweep = await cli('sweep', '--database', 'guess.db');
  assert.is(sweep.code, 2);
  assert.is(
    sweep.stderr,
    "supervised-sessions: sweep needs --max-age S, your app's maxAge: a guess would delete sessions the app still considers live (see supervised-sessions --help)\n",
  );
  const stats = await cli('stats', '--database', 'guess.db');
  assert.is(stats.code, 0);
  assert.match(stats.stdout, /^dead: 1$/m);
  assert.match(
    stats.stderr,
    /^supervised-sessions stats: judged by --max-age 86400 \(the default\) --timestamp relative \(the default\); pass your app's maxAge/,
  );
  const sessions = await cli('sessions', '--owner', 'ada', '--database', 'guess.db', '--max-age', '2592000');
  assert.match(sessions.stderr, /judged by --max-age 2592000 --timestamp relative \(the default\)/);
  const told = await cli('stats', '--database', 'guess.db', '--max-age', '2592000', '--timestamp', 'relative');
  assert.is(told.stderr, '', 'given both: nothing to say');
  assert.match(told.stdout, /^live: 1$/m);
  const right = await cli('sweep', '--database', 'guess.db', '--max-age', '2592000');
  assert.is(right.stdout, 'deleted: 0\n');
  const check = await startSessionApp({ database, sweepSignal: false, maxAge: 30 * 86400 });
  assert.is((await check.store.sessionsOf('ada')).length, 1, 'the live session was never deleted');
  await check.stop();
});

test('usage errors are one line and exit 2; errors met on the database exit 1', async () => {
  for (const args of [
    ['stats', '--touch-after', '5'],
    ['frobnicate'],
    ['stats', '--max-age', 'soon'],
    ['stats', '--max-age', '86400000'],
    ['stats', '--timestamp', 'sliding'],
    ['stats', '--database', 'redis+cluster://app:hunter2@cache:7000,cache:7001/2'],
  ]) {
    const result = await cli(...args);
    assert.is(result.code, 2, args.join(' '));
    assert.is(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /\(see supervised-sessions --help\)\n$/);
  }
  const redis = await cli('stats', '--database', 'redis+cluster://app:hunter2@cache:7000,cache:7001/2');
  assert.match(
    redis.stderr,
    /"redis\+cluster:\/\/\*\*\*@cache:7000,cache:7001\/2" is not a usable Redis URL: a Redis Cluster has no database number/,
  );
  assert.not.match(redis.stderr, /hunter2/);
  assert.not.ok(existsSync(join(temp.dir, 'redis:')), 'no file or folder named after the URL');
  const flags = await cli('stats', '--touch-after', '5');
  assert.match(
    flags.stderr,
    /unknown option --touch-after \(the options are --database, --table, --max-age, --timestamp, --max-lifetime, --owner, --handle\)/,
  );
  const ms = await cli('stats', '--max-age', '86400000');
  assert.match(ms.stderr, /invalid --max-age: 86400000 seconds is 1000 days.*milliseconds\? --max-age counts seconds/);
  const missing = await cli('stats', '--database', 'missing.db', '--max-age', '60', '--timestamp', 'relative');
  assert.is(missing.code, 1);
  assert.is(missing.stderr, 'supervised-sessions stats: no database file missing.db\n');
});

test.run();
