// One pg Client per actor (never a Pool): connection death is explicit
// ('error', then 'end'), so the actor decides when to replay. An unhandled
// 'error' event on a Client kills the process (pg's documentation, "Client:
// events"), so every Client gets a listener before anything else.
import { OWNER_BUSY } from './statements.ts';
import pg from 'pg';
import { ConfigError, StoreUnavailableError } from '../../errors.ts';
import { postgresTargets, redactIn, redactUrl, type PostgresTargets } from './url.ts';

export interface ConnectOptions {
  database: string;
  /** ms; bounds every statement (statement_timeout), and connecting unless connectTimeoutMs says otherwise. */
  timeoutMs: number;
  /** ms; how long this connection attempt may take (a reconnect late in a batch has less time left). */
  connectTimeoutMs?: number;
  /** Pipelined queries: each batch goes out in one write, answered in one read. */
  pipeline?: boolean;
  applicationName?: string;
}

export type Client = pg.Client;

// int8 (count(*), epoch-ms columns) as a JS number: every value we store in
// one is an epoch millisecond or a count, far below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

/** The URL's hosts and parameters (url.ts); the config refused a URL that does not parse. */
export function targetsOf(database: string): PostgresTargets {
  const targets = postgresTargets(database);
  if (typeof targets === 'string') throw new ConfigError('database', `invalid config "database": ${redactUrl(database)} ${targets}`);
  return targets;
}

/**
 * Opens a connection to the first host of the URL that answers and is what
 * target_session_attrs asks for (libpq's rule: hosts in the order given,
 * each bounded by its share of the connect timeout). A host that is
 * read-only (a standby, a demoted primary) is skipped as if it were down.
 * Throws the last host's error: a connection loss (retried by callers with
 * backoff) unless a host refused us for a reason waiting will not fix.
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  const targets = targetsOf(options.database);
  const total = Math.max(250, Math.ceil(options.connectTimeoutMs ?? options.timeoutMs));
  const started = Date.now();
  let lastLoss: unknown = null;
  let firstProblem: unknown = null;
  for (let i = 0; i < targets.urls.length; i++) {
    const left = total - (Date.now() - started);
    if (i > 0 && left <= 0) break;
    // Each host gets its share of what is left, so one that drops packets cannot starve the next.
    const share = Math.max(250, Math.ceil(left / (targets.urls.length - i)));
    try {
      const client = await connectOne(targets.urls[i], options, share, targets.pgbouncer).catch((error: unknown) => {
        // libpq's sslmode=prefer (and allow): TLS when the server offers it,
        // else a plain connection — pg alone would refuse a server without
        // TLS (its "prefer" means verify-full). pg_auto_failover prints
        // such URLs.
        const plain = plainFallback(targets.urls[i]);
        if (plain === null || !/does not support SSL/i.test(String((error as Error).message))) throw error;
        return connectOne(plain, options, share, targets.pgbouncer);
      });
      let problem: Error | null;
      try {
        problem = targets.attrs === 'any' ? null : await notWanted(client, targets.attrs, targets.labels[i], share);
      } catch (error) {
        await closeClient(client);
        throw error;
      }
      if (problem === null) return client;
      await closeClient(client);
      lastLoss = problem;
    } catch (error) {
      if (isConnectionLoss(error)) lastLoss = error;
      else firstProblem ??= error;
    }
  }
  throw firstProblem ?? lastLoss ?? new Error('no host answered');
}

/** The URL with sslmode=disable when it says prefer or allow (libpq's fallback), else null. */
function plainFallback(url: string): string | null {
  const mode = /([?&])sslmode=(prefer|allow)(?=&|#|$)/i;
  return mode.test(url) ? url.replace(mode, '$1sslmode=disable') : null;
}

/** Why a connected server is not one the store may use (an Error counted as a connection loss), or null. */
async function notWanted(client: Client, attrs: 'read-write' | 'primary', label: string, timeoutMs: number): Promise<Error | null> {
  // Bounded by this host's share: one that accepts and then hangs does not hold the walk.
  const { rows } = await client.query<{ recovery: boolean; ro: string }>({
    text: "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro",
    query_timeout: timeoutMs,
  } as pg.QueryConfig);
  const { recovery, ro } = rows[0];
  if (recovery || (attrs === 'read-write' && ro === 'on')) {
    const what = recovery ? 'a standby (in recovery)' : 'read-only (default_transaction_read_only is on)';
    return Object.assign(new Error(`the server at ${label} is ${what}; target_session_attrs=${attrs} skips it`), {
      code: '25006',
    });
  }
  return null;
}

/**
 * One host. The URL's own parameters (sslmode, application_name,
 * statement_timeout, ...) win over these defaults: pg merges the parsed
 * connection string over the config object.
 */
async function connectOne(url: string, options: ConnectOptions, timeoutMs: number, pgbouncer: boolean): Promise<Client> {
  // Behind PgBouncer, the startup packet may carry only the parameters it
  // knows (application_name among them): the server-side bounds are then set
  // per transaction by the engine (SET LOCAL), and the client-side one stays.
  const serverBounds = pgbouncer
    ? {}
    : {
        // Server-side bounds: a statement never outlives what a caller waits,
        // and a transaction left open by a vanished client ends by itself.
        statement_timeout: statementTimeoutMs(options.timeoutMs),
        idle_in_transaction_session_timeout: idleInTransactionTimeoutMs(options.timeoutMs),
      };
  const client = new pg.Client({
    connectionString: url,
    pipeline: options.pipeline ?? false,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: timeoutMs,
    ...serverBounds,
    // Client-side bound for a network that drops packets without a reset: the
    // client destroys the socket and the actor replays on a new connection.
    query_timeout: Math.ceil(options.timeoutMs) + 2000,
    application_name: options.applicationName ?? 'supervised-sessions',
    types,
  } as pg.ClientConfig & { pipeline?: boolean });
  client.on('error', () => {
    /* seen through the failing query and `isConnectionLoss` */
  });
  if (pgbouncer) unnamed(client);
  try {
    await client.connect();
  } catch (error) {
    client.on('error', () => {});
    void client.end().catch(() => {});
    throw error;
  }
  return client;
}

export const statementTimeoutMs = (timeoutMs: number) => Math.max(1000, Math.ceil(timeoutMs));
export const idleInTransactionTimeoutMs = (timeoutMs: number) => Math.max(10_000, Math.ceil(timeoutMs) * 2);

/**
 * PgBouncer before 1.21 (Debian 12 ships 1.18) in transaction mode hands each
 * transaction to any server connection: a statement prepared by name on one
 * is unknown on the next. Every named query of this client is sent unnamed
 * instead (parsed and planned each time it runs).
 */
function unnamed(client: Client): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, ...rest: unknown[]) => {
    if (config !== null && typeof config === 'object' && 'name' in config && !('submit' in config)) {
      const { name: _name, ...plain } = config as Record<string, unknown>;
      return query(plain, ...rest);
    }
    return query(config, ...rest);
  };
}

/** Closes a client whatever its state; never throws. */
export async function closeClient(client: Client | null): Promise<void> {
  if (!client) return;
  try {
    await client.end();
  } catch {
    /* already gone */
  }
}

const LOST_CODES = new Set([
  // read_only_sql_transaction: the server is (or became) a standby or a
  // demoted primary. The transaction did nothing; another host, or this one
  // once it is a primary again, will take the batch.
  '25006',
  '57P01', // admin_shutdown (pg_terminate_backend, a fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '57P05', // idle_session_timeout: the server closed an idle connection
  '53300', // too_many_connections: waiting helps
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

const LOST_MESSAGES = /Connection terminated|not queryable|Query read timeout|timeout expired|Connection ended|socket hang up/i;

/**
 * A failure of the connection, not of an operation: the unanswered batch is
 * replayed on a new connection after a backoff. SQLSTATE class 08 is
 * connection_exception; pg's own "Connection terminated unexpectedly" has no
 * code at all (research note §5).
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || LOST_CODES.has(code))) return true;
  return typeof code !== 'string' && LOST_MESSAGES.test(error.message);
}

/** A transaction another one collided with (deadlock, serialization): run the batch again. */
export function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '40P01' || code === '40001') return true;
  // A renew whose owner lock another transaction held (statements.ts, OWNER_BUSY).
  return code === '22P02' && String((error as { message?: unknown }).message).includes(OWNER_BUSY);
}

/** Errors that waiting will not fix: a wrong password, a missing database or role. */
export function isConfigProblem(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '28P01' || code === '28000' || code === '3D000' || code === '42501';
}

/** The error a caller sees for a connection problem, with the URL's password masked. */
export function unavailableError(error: unknown, database: string, what = 'the PostgreSQL server is unreachable'): Error {
  const reason = error instanceof Error ? error.message : String(error);
  if (isConfigProblem(error)) {
    return new ConfigError('database', redactIn(`invalid config "database": ${redactUrl(database)}: ${reason}`, database));
  }
  return new StoreUnavailableError(redactIn(`${what} (${redactUrl(database)}): ${reason}`, database));
}

/** Backoff before reconnect attempt `n` (0-based): 25 ms doubling to 1 s, with jitter (engines/backoff.ts). */
export { backoffMs } from '../backoff.ts';
