// The command line: one program over the engine registry (engines/index.ts).
import { resolveConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { DATABASE_FORMS, engineFor, type SessionRow } from './engines/index.ts';
import { expiryPolicy } from './store/expiry.ts';
import { assertOwner } from './store/ids.ts';

export const USAGE = `usage: supervised-sessions <command> [options]

commands:
  setup    create the session table and its indexes (idempotent)
  clear    delete every session (the table stays)
  drop     drop the session table
  stats    print live and dead session counts and the database size
  sweep    delete dead sessions now and print how many (needs --max-age: your app's maxAge)
  sessions --owner ID              list the owner's live sessions: handle, created, last used, expires (ISO times)
  revoke --owner ID [--handle H]   end one session of the owner, or all of them; prints revoked: N

options:
  --database FILE|URL              ${DATABASE_FORMS} (default: sessions.db)
  --table NAME                     table name (default: session)
  --max-age S                      your app's maxAge: seconds after which a session is dead
                                   (required by sweep; stats and sessions use 86400 and say so)
  --timestamp relative|fixed       your app's timestamp: age from the last access, or from creation
                                   (default: relative, which never deletes a session live under 'fixed')
  --max-lifetime S                 your app's maxLifetime: absolute cap from creation, in seconds (default: none)
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
type Command = (typeof COMMANDS)[number];

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
      if (!key) throw new UsageError(`unknown option ${flag} (the options are ${Object.keys(FLAGS).join(', ')})`);
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`option ${flag} needs a value`);
      if (NUMERIC.has(key)) {
        const number = value.trim() === '' ? NaN : Number(value);
        if (!Number.isFinite(number) || number <= 0)
          throw new UsageError(`invalid ${flag}: expected a positive number of seconds, got ${JSON.stringify(value)}`);
        settings[key] = number;
      } else {
        settings[key] = value;
      }
      continue;
    }
    if (command !== null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    if (!(COMMANDS as readonly string[]).includes(arg))
      throw new UsageError(`unknown command ${JSON.stringify(arg)} (expected one of: ${COMMANDS.join(', ')})`);
    command = arg as Command;
  }
  if (command === null) throw new UsageError('no command given');
  for (const [key, commands] of Object.entries(TARGETS)) {
    if (key in settings && !commands.includes(command)) throw new UsageError(`option --${key} does not go with ${command}`);
  }
  if ((command === 'sessions' || command === 'revoke') && !('owner' in settings)) throw new UsageError(`${command} needs --owner ID`);
  // A sweep by a guessed maxAge deletes sessions the app still considers live.
  if (command === 'sweep' && !('maxAge' in settings))
    throw new UsageError("sweep needs --max-age S, your app's maxAge: a guess would delete sessions the app still considers live");
  if ('owner' in settings) {
    try {
      assertOwner(settings.owner, '--owner');
    } catch (error) {
      throw new UsageError((error as Error).message.replace('--owner: owner must be', 'invalid --owner: expected'));
    }
  }
  return { command, settings };
}

/** Settings a command judges liveness by: when not given, it says which it used. */
const JUDGED: readonly Command[] = ['stats', 'sessions'];

async function run(command: Command, input: Record<string, unknown>, io: Output): Promise<void> {
  const { owner, handle, ...settings } = input as { owner?: string; handle?: string };
  // The same defaults and validation as startSessionApp; a bad value is a usage error.
  let config: ReturnType<typeof resolveConfig>;
  try {
    config = resolveConfig(settings);
  } catch (error) {
    throw error instanceof ConfigError ? new UsageError(flagMessage(error)) : error;
  }
  if (JUDGED.includes(command) && !('maxAge' in settings && 'timestamp' in settings)) {
    // Never a silent guess: the counts (or expiries) follow from these, which the table does not record.
    io.err(
      `supervised-sessions ${command}: judged by --max-age ${config.maxAge}${'maxAge' in settings ? '' : ' (the default)'} --timestamp ${config.timestamp}${'timestamp' in settings ? '' : ' (the default)'}${config.maxLifetime === null ? '' : ` --max-lifetime ${config.maxLifetime}`}; pass your app's maxAge and timestamp if they differ`,
    );
  }
  const { database, table } = config;
  const engine = engineFor(database);
  const admin = await engine.admin();
  const at = { database, table, policy: expiryPolicy(config), maxSessionBytes: config.maxSessionBytes };
  // The password of a database URL is never printed back.
  const where = `table "${table}" in ${engine.redact(database)}`;

  switch (command) {
    case 'setup': {
      const found = await admin.setup(at);
      io.out(
        found === 'missing'
          ? `created ${where}, with its indexes on touched_at, created_at and owner`
          : found === 'old'
            ? `upgraded ${where} in place: added the missing columns (owner, renewed_to) and the owner index, every session kept`
            : `${where} already exists with the right columns: nothing to do`,
      );
      return;
    }
    case 'clear':
    case 'drop': {
      const done = command === 'clear' ? await admin.clear(at, at.policy) : await admin.drop(at);
      if (done === 'no-database') io.out(`no database file ${database}: nothing to ${command}`);
      else if (done === 'no-table') io.out(`no ${where}: nothing to ${command}`);
      else io.out(command === 'clear' ? `cleared ${where}: ${(done as { deleted: number }).deleted} sessions deleted` : `dropped ${where}`);
      return;
    }
    case 'stats': {
      const { live, dead, bytes } = await admin.stats(at);
      io.out(`live: ${live}`);
      io.out(`dead: ${dead}`);
      io.out(`bytes: ${bytes}`);
      return;
    }
    case 'sessions':
      for (const row of await admin.sessions(at, owner!)) io.out(sessionLine(row));
      return;
    case 'revoke':
      io.out(`revoked: ${await admin.revoke(at, owner!, handle)}`);
      return;
    case 'sweep': {
      const { deleted, skipped } = await admin.sweep(at);
      if (skipped) io.out('skipped: another process is sweeping this table');
      io.out(`deleted: ${deleted}`);
    }
  }
}

/** One line of `sessions`: the handle, then when the session was created, last used, and when it expires if unused. */
function sessionLine(row: SessionRow): string {
  const at = (ms: number) => new Date(ms).toISOString();
  return `${row.handle}  created ${at(row.createdAt)}  last used ${at(row.touchedAt)}  expires ${at(row.expiresAt)}`;
}

const FLAG_OF: Record<string, string> = {
  database: '--database',
  table: '--table',
  maxAge: '--max-age',
  timestamp: '--timestamp',
  maxLifetime: '--max-lifetime',
};

/** A ConfigError's message with the setting named as its flag. */
function flagMessage(error: ConfigError): string {
  const flag = FLAG_OF[error.key];
  if (!flag) return error.message;
  return error.message.replace(`config "${error.key}"`, flag).replace(` ${error.key} counts seconds`, ` ${flag} counts seconds`);
}

/** Runs the command line; resolves with the exit code. Errors are one line, without a stack. */
export async function main(
  argv: string[],
  io: Output = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  },
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`supervised-sessions: ${(error as Error).message} (see supervised-sessions --help)`);
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
    if (error instanceof ConfigError) message = flagMessage(error);
    // Whatever the error, a password in --database is never printed back.
    if (typeof parsed.settings.database === 'string')
      message = engineFor(parsed.settings.database).redactIn(message, parsed.settings.database);
    // A usage error (a bad value) is 2; anything the command met on the database — a missing file,
    // table or PostgreSQL database, a wrong password, a server down — is 1.
    io.err(`supervised-sessions ${parsed.command}: ${message}${error instanceof UsageError ? ' (see supervised-sessions --help)' : ''}`);
    return error instanceof UsageError ? 2 : 1;
  }
}
