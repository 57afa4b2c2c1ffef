// One pg Client per actor (never a Pool): connection death is explicit
// ('error', then 'end'), so the actor decides when to replay. An unhandled
// 'error' event on a Client kills the process (pg's documentation, "Client:
// events"), so every Client gets a listener before anything else.
import { OWNER_BUSY } from './statements.ts';
import pg from 'pg';
import { ConfigError, StoreUnavailableError } from '../../errors.ts';
import { redactIn, redactUrl } from './url.ts';

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

/**
 * Opens a connection. The URL's own parameters (sslmode, application_name,
 * statement_timeout, ...) win over these defaults: pg merges the parsed
 * connection string over the config object.
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  const client = new pg.Client({
    connectionString: options.database,
    pipeline: options.pipeline ?? false,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: Math.max(250, Math.ceil(options.connectTimeoutMs ?? options.timeoutMs)),
    // Server-side bounds: a statement never outlives what a caller waits,
    // and a transaction left open by a vanished client ends by itself.
    statement_timeout: Math.max(1000, Math.ceil(options.timeoutMs)),
    idle_in_transaction_session_timeout: Math.max(10_000, Math.ceil(options.timeoutMs) * 2),
    // Client-side bound for a network that drops packets without a reset: the
    // client destroys the socket and the actor replays on a new connection.
    query_timeout: Math.ceil(options.timeoutMs) + 2000,
    application_name: options.applicationName ?? 'supervised-sessions',
    types,
  } as pg.ClientConfig & { pipeline?: boolean });
  client.on('error', () => {
    /* seen through the failing query and `isConnectionLoss` */
  });
  try {
    await client.connect();
  } catch (error) {
    client.on('error', () => {});
    void client.end().catch(() => {});
    throw error;
  }
  return client;
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
  '57P01', // admin_shutdown (pg_terminate_backend, a fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
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
