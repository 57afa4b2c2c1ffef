// The command line, run as a user runs it: the package.json bin, in a child process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { startSessionApp } from '../src/index.ts';
import { runScript, sleep, tempDir } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = join(root, pkg.bin['supervised-sessions']);
const temp = tempDir();
const cli = (...args: string[]) => runScript(bin, args, { cwd: temp.dir });

test('--help prints the usage and exits 0', async () => {
  const result = await cli('--help');
  assert.is(result.code, 0);
  assert.match(result.stdout, /usage: supervised-sessions/);
  for (const command of ['setup', 'clear', 'drop', 'stats', 'sweep']) assert.match(result.stdout, new RegExp(`\\b${command}\\b`));
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
  const app = await startSessionApp({ database, maxAge: 1, sweepSignal: false, cleanerInterval: 3600 });
  for (let i = 0; i < 4; i++) await app.store.put(null, { i });
  await sleep(1300);
  for (let i = 0; i < 3; i++) await app.store.put(null, { i });
  await app.stop();
  const stats = await cli('stats', '--database', 'stats.db', '--max-age', '1');
  assert.is(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^live: 3$/m);
  assert.match(stats.stdout, /^dead: 4$/m);
  const bytes = Number(/^bytes: (\d+)$/m.exec(stats.stdout)?.[1]);
  assert.ok(bytes >= 4096, `bytes: ${bytes}`);
  // With the default max age (a day) nothing is dead yet.
  const defaults = await cli('stats', '--database=stats.db');
  assert.match(defaults.stdout, /^live: 7$/m);
  const sweep = await cli('sweep', '--database', 'stats.db', '--max-age', '1');
  assert.is(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stdout, /^deleted: 4$/m);
  const after = await cli('stats', '--database', 'stats.db', '--max-age', '1');
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
  ['sweep on a missing file', ['sweep', '--database', 'missing.db'], /no database file/],
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
  db.exec('CREATE TABLE session (x TEXT); INSERT INTO session VALUES (\'keep\')');
  db.close();
  for (const command of ['setup', 'clear', 'drop', 'stats', 'sweep']) {
    const result = await cli(command, '--database', 'other.db');
    assert.is(result.code, 1, `${command}: ${result.stdout}`);
    assert.match(result.stderr, /other columns/);
  }
  const check = new DatabaseSync(file);
  assert.is(check.prepare('SELECT count(*) AS n FROM session').get()!.n, 1);
  check.close();
  assert.ok(existsSync(file));
});

test.after(() => temp.remove());
test.run();
