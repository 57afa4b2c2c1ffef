import { existsSync, statSync } from 'node:fs';
import { resolveConfig } from './config.ts';
import { ConfigError, SessionError } from './errors.ts';
import { openDatabase } from './store/connection.ts';
import { expiresAt, isLive, liveArgs, liveThresholds, expiryPolicy } from './store/expiry.ts';
import { assertOwner, digestFromHandle, handleFromDigest } from './store/ids.ts';
import { ownerStatements } from './store/sqlite-engine.ts';
import { clearTable, dropTable, requireTable, setupTable, tableShape } from './store/schema.ts';
import { countSessions, sweepDead } from './store/sweep.ts';
import { isPostgresUrl, redactIn, redactUrl } from './store/postgres/url.ts';
import { ownerSessions, revokeOwner, tableStats, withClient } from './store/postgres/admin.ts';
import * as pgSchema from './store/postgres/schema.ts';
import { closePostgres, sweepPostgres } from './cleaner/postgres-sweep.ts';

export const USAGE = `usage: supervised-sessions <command> [options]

commands:
  setup    create the session table and its indexes (idempotent)
  clear    delete every session (the table stays)
  drop     drop the session table
  stats    print live and dead session counts and the database size
  sweep    delete dead sessions now and print how many
  sessions --owner ID              list the owner's live sessions: handle, created, last used, expires (ISO times)
  revoke --owner ID [--handle H]   end one session of the owner, or all of them; prints revoked: N

options:
  --database FILE|URL              SQLite file, or a postgres:// URL (default: sessions.db)
  --table NAME                     table name (default: session)
  --max-age S                      seconds after which a session is dead (default: 86400)
  --timestamp relative|fixed       age from the last access, or from creation (default: relative)
  --max-lifetime S                 absolute cap from creation, in seconds (default: none)
  --owner ID                       the user id whose sessions sessions/revoke work on
  --handle H                       one session's handle, as sessions prints it
  -h, --help                       print this help
`;

const FLAGS: Record<string, 'database' | 'table' | 'maxAge' | 'timestamp' | 'maxLifetime' | 'owner' | 'handle'> = {
  '--database': 'database',
  '--table': 'table',
  '--max-age': 'maxAge',
  '--timestamp': 'timestamp',
  '--max-lifetime': 'maxLifetime',
  '--owner': 'owner',
  '--handle': 'handle',
};
const NUMERIC = new Set(['maxAge', 'maxLifetime']);
const COMMANDS = ['setup', 'clear', 'drop', 'stats', 'sweep', 'sessions', 'revoke'] as const;
/** Flags that are not settings of startSessionApp, and the commands that take them. */
const TARGETS: Record<string, readonly Command[]> = { owner: ['sessions', 'revoke'], handle: ['revoke'] };
type Command = typeof COMMANDS[number];

class UsageError extends Error {}

interface Output {
  out(line: string): void;
  err(line: string): void;
}

function parse(argv: string[]): { command: Command | 'help'; settings: Record<string, unknown> } {
  let command: Command | 'help' | null = null;
  const settings: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { command: 'help', settings };
    if (arg.startsWith('-')) {
      const eq = arg.indexOf('=');
      const flag = eq === -1 ? arg : arg.slice(0, eq);
      const key = FLAGS[flag];
      if (!key) throw new UsageError(`unknown option ${flag}`);
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`option ${flag} needs a value`);
      if (NUMERIC.has(key)) {
        const number = value.trim() === '' ? NaN : Number(value);
        if (!Number.isFinite(number) || number <= 0) throw new UsageError(`invalid ${flag}: expected a positive number of seconds, got ${JSON.stringify(value)}`);
        settings[key] = number;
      } else {
        settings[key] = value;
      }
      continue;
    }
    if (command !== null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    if (!(COMMANDS as readonly string[]).includes(arg)) throw new UsageError(`unknown command ${JSON.stringify(arg)} (expected one of: ${COMMANDS.join(', ')})`);
    command = arg as Command;
  }
  if (command === null) throw new UsageError('no command given');
  for (const [key, commands] of Object.entries(TARGETS)) {
    if (key in settings && !commands.includes(command)) throw new UsageError(`option --${key} does not go with ${command}`);
  }
  if ((command === 'sessions' || command === 'revoke') && !('owner' in settings)) throw new UsageError(`${command} needs --owner ID`);
  if ('owner' in settings) {
    try {
      assertOwner(settings.owner, '--owner');
    } catch (error) {
      throw new UsageError((error as Error).message.replace('--owner: owner must be', 'invalid --owner: expected'));
    }
  }
  return { command, settings };
}

function fileBytes(database: string): number {
  let bytes = 0;
  for (const file of [database, `${database}-wal`]) if (existsSync(file)) bytes += statSync(file).size;
  return bytes;
}

async function run(command: Command, input: Record<string, unknown>, io: Output): Promise<void> {
  const { owner, handle, ...settings } = input as { owner?: string; handle?: string };
  // The same defaults and validation as startSessionApp.
  const config = resolveConfig(settings);
  const { database, table } = config;
  if (isPostgresUrl(database)) return runPostgres(command, config, owner, handle, io);
  const where = `table "${table}" in ${database}`;
  const missingFile = database !== ':memory:' && !existsSync(database);

  if (command === 'setup') {
    const db = openDatabase({ database });
    try {
      const found = setupTable(db, table);
      io.out(found === 'missing' ? `created ${where}, with its indexes on touched_at, created_at and owner`
        : found === 'old' ? `upgraded ${where} in place: added the missing columns (owner, renewed_to) and the owner index, every session kept`
        : `${where} already exists with the right columns: nothing to do`);
    } finally {
      db.close();
    }
    return;
  }
  if (command === 'clear' || command === 'drop') {
    if (missingFile) {
      io.out(`no database file ${database}: nothing to ${command}`);
      return;
    }
    const db = openDatabase({ database });
    try {
      if (command === 'clear') {
        const shape = tableShape(db, table);
        const before = shape === 'ok' || shape === 'old' ? countSessions(db, table, expiryPolicy(config)) : null;
        const done = clearTable(db, table);
        io.out(done ? `cleared ${where}: ${before!.live + before!.dead} sessions deleted` : `no ${where}: nothing to clear`);
      } else {
        io.out(dropTable(db, table) ? `dropped ${where}` : `no ${where}: nothing to drop`);
      }
    } finally {
      db.close();
    }
    return;
  }
  if (missingFile) throw new SessionError(`no database file ${database}`);
  const db = openDatabase({ database });
  try {
    requireTable(db, table, database);
    if (command === 'stats') {
      const { live, dead } = countSessions(db, table, expiryPolicy(config));
      io.out(`live: ${live}`);
      io.out(`dead: ${dead}`);
      io.out(`bytes: ${fileBytes(database)}`);
      return;
    }
    if (command === 'sessions' || command === 'revoke') {
      ownerCommand(db, command, table, config, owner!, handle, io);
      db.close();
      return;
    }
  } catch (error) {
    db.close();
    throw error;
  }
  // sweep: the same batched delete the cleaner runs.
  try {
    io.out(`deleted: ${sweepDead(db, table, expiryPolicy(config))}`);
  } finally {
    db.close();
  }
}

/** The same commands on a PostgreSQL URL (the password is never printed back). */
async function runPostgres(command: Command, config: ReturnType<typeof resolveConfig>, owner: string | undefined, handle: string | undefined, io: Output): Promise<void> {
  const { database, table } = config;
  const where = `table "${table}" in ${redactUrl(database)}`;
  const policy = expiryPolicy(config);
  await withClient(database, async (client) => {
    if (command === 'setup') {
      const found = await pgSchema.setupTable(client, table);
      io.out(found === 'missing' ? `created ${where}, with its indexes on touched_at, created_at and owner`
        : found === 'old' ? `upgraded ${where} in place: added the missing columns (owner, renewed_to) and the owner index, every session kept`
        : `${where} already exists with the right columns: nothing to do`);
      return;
    }
    if (command === 'clear' || command === 'drop') {
      const shape = await pgSchema.tableShape(client, table);
      const before = shape === 'ok' || shape === 'old' ? await tableStats(client, table, policy) : null;
      const done = command === 'clear' ? await pgSchema.clearTable(client, table) : await pgSchema.dropTable(client, table);
      if (command === 'clear') io.out(done ? `cleared ${where}: ${before!.live + before!.dead} sessions deleted` : `no ${where}: nothing to clear`);
      else io.out(done ? `dropped ${where}` : `no ${where}: nothing to drop`);
      return;
    }
    await pgSchema.requireTable(client, table, database);
    if (command === 'stats') {
      const { live, dead, bytes } = await tableStats(client, table, policy);
      io.out(`live: ${live}`);
      io.out(`dead: ${dead}`);
      io.out(`bytes: ${bytes}`);
      return;
    }
    if (command === 'sessions') {
      for (const row of await ownerSessions(client, table, policy, config.maxSessionBytes, owner!)) {
        io.out(sessionLine(row));
      }
      return;
    }
    if (command === 'revoke') {
      const digest = handle === undefined ? undefined : digestFromHandle(handle);
      io.out(`revoked: ${await revokeOwner(client, table, policy, config.maxSessionBytes, owner!, digest)}`);
    }
  });
  if (command === 'sweep') {
    // The cleaner's sweep, under the same lock: one sweeper at a time across the fleet.
    let report;
    try {
      report = await sweepPostgres({ database, table, policy, timeoutMs: 10_000, abort: new Int32Array(new SharedArrayBuffer(4)) });
    } finally {
      await closePostgres();
    }
    const { deleted, skipped } = report;
    if (skipped) io.out('skipped: another process is sweeping this table');
    io.out(`deleted: ${deleted}`);
  }
}

/** `sessions` and `revoke`: the owner's sessions, through the owner index. */
function ownerCommand(db: ReturnType<typeof openDatabase>, command: 'sessions' | 'revoke', table: string, config: ReturnType<typeof resolveConfig>,
  owner: string, handle: string | undefined, io: Output): void {
  const policy = expiryPolicy(config);
  const live = liveThresholds(policy, Date.now());
  const sql = ownerStatements(table, policy);
  if (command === 'sessions') {
    const rows = db.prepare(sql.list).all(owner, ...liveArgs(live)) as Array<{ sid_hash: Uint8Array; created_at: number; touched_at: number; max_age: number | null }>;
    for (const row of rows) io.out(sessionLine({ handle: handleFromDigest(row.sid_hash), createdAt: row.created_at, touchedAt: row.touched_at, expiresAt: expiresAt(policy, row) }));
    return;
  }
  let deleted: Array<{ created_at: number; touched_at: number; max_age: number | null }> = [];
  if (handle === undefined) {
    deleted = db.prepare(sql.revokeAll).all(owner, null) as typeof deleted;
  } else {
    // A handle of the wrong shape names no session: revoked: 0, as for another owner's.
    const digest = digestFromHandle(handle);
    if (digest !== null) deleted = db.prepare(sql.revoke).all(digest, owner) as typeof deleted;
  }
  io.out(`revoked: ${deleted.filter((row) => isLive(row, live)).length}`);
}

/** One line of `sessions`: the handle, then when the session was created, last used, and when it expires if unused. */
function sessionLine(row: { handle: string; createdAt: number; touchedAt: number; expiresAt: number }): string {
  const at = (ms: number) => new Date(ms).toISOString();
  return `${row.handle}  created ${at(row.createdAt)}  last used ${at(row.touchedAt)}  expires ${at(row.expiresAt)}`;
}

const FLAG_OF: Record<string, string> = { database: '--database', table: '--table', maxAge: '--max-age', timestamp: '--timestamp', maxLifetime: '--max-lifetime' };

/** Runs the command line; resolves with the exit code. Errors are one line, without a stack. */
export async function main(argv: string[], io: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`supervised-sessions: ${(error as Error).message}`);
    io.err('run supervised-sessions --help for usage');
    return 2;
  }
  if (parsed.command === 'help') {
    io.out(USAGE.trimEnd());
    return 0;
  }
  try {
    await run(parsed.command, parsed.settings, io);
    return 0;
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    if (error instanceof ConfigError && FLAG_OF[error.key]) message = message.replace(`config "${error.key}"`, FLAG_OF[error.key]);
    // Whatever the error, a password in --database is never printed back.
    if (typeof parsed.settings.database === 'string') message = redactIn(message, parsed.settings.database);
    io.err(`supervised-sessions ${parsed.command}: ${message}`);
    return error instanceof ConfigError ? 2 : 1;
  }
}
