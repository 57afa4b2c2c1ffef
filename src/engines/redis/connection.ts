// One node-redis client per actor, created in the actor's own thread from the
// URL (client objects cannot cross threads). Client-side caching stays off:
// a read must see the latest logout, not an invalidation still on its way.
import { createClient } from 'redis';
import { ConfigError, StoreUnavailableError } from '../../errors.ts';
import { parseRedisUrl, redactIn, redactUrl } from './url.ts';

export type Client = ReturnType<typeof createClient>;

export interface ConnectOptions {
  database: string;
  /** ms: how long connecting may take. */
  timeoutMs: number;
  /** ms: how long node-redis lets a command wait for its reply (the store's own deadline comes first). */
  commandTimeoutMs?: number;
  name?: string;
}

/** Opens a client; it reconnects by itself after a lost connection (calls sent meanwhile wait in its queue). */
export async function connect(options: ConnectOptions): Promise<Client> {
  const target = parseRedisUrl(options.database);
  if (typeof target === 'string') throw new ConfigError('database', `invalid config "database": ${redactUrl(options.database)}: ${target}`);
  const { host, port } = target.hosts[0];
  // A name with a space is refused by CLIENT SETNAME (and the handshake would be retried forever).
  const client = createClient({
    RESP: 2,
    // Redis Enterprise's maintenance push notifications: off (the handshake would probe for them).
    maintNotifications: 'disabled',
    // A command not sent when the connection is lost fails at once (never
    // sent later, after its caller was told it failed, or out of order with
    // the calls sent again): the store sends it again itself, in order.
    disableOfflineQueue: true,
    commandOptions: { timeout: Math.ceil(options.commandTimeoutMs ?? options.timeoutMs + 5000) },
    username: target.username,
    password: target.password,
    database: target.db,
    name: (options.name ?? 'supervised-sessions').replace(/\s/g, '-'),
    socket: {
      host,
      port,
      tls: target.tls,
      connectTimeout: Math.max(250, Math.ceil(options.timeoutMs)),
      keepAlive: true,
      // Reconnect forever with a capped backoff: the actor bounds every call by requestTimeout.
      reconnectStrategy: (retries: number) => Math.min(1000, 25 * 2 ** Math.min(retries, 6)),
    },
  } as Parameters<typeof createClient>[0]);
  // node-redis retries a failed handshake (a wrong password) for ever: the
  // first error that waiting will not fix ends the attempt at once.
  let refused: (error: unknown) => void = () => {};
  const handshake = new Promise<never>((_, reject) => {
    refused = reject;
  });
  handshake.catch(() => {});
  client.on('error', (error: unknown) => {
    // Otherwise seen through the failing call and isConnectionLoss.
    if (isConfigProblem(error)) refused(error);
  });
  try {
    await withTimeout(Promise.race([client.connect(), handshake]), options.timeoutMs, 'connecting');
  } catch (error) {
    await closeClient(client);
    throw error;
  }
  return client;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Closes a client whatever its state; never throws. */
export async function closeClient(client: Client | null): Promise<void> {
  if (!client) return;
  try {
    client.destroy();
  } catch {
    /* already gone */
  }
}

const LOST_NAMES = new Set([
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'ClientClosedError',
  'ClientOfflineError',
  'DisconnectsClientError',
  'ReconnectStrategyError',
  // A command node-redis gave up waiting for (the call is sent again; its reply key answers for a run that happened).
  'TimeoutError',
  'AbortError',
]);
const LOST_CODES = new Set([
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
/** Replies that waiting fixes: a server loading its AOF, a replica, a failover in progress. */
const WAIT_REPLIES = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY|NOREPLICAS)\b/;

/** A failure of the connection or a server that is not ready: the call is retried within requestTimeout. */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (LOST_NAMES.has(error.constructor.name) || LOST_NAMES.has(error.name)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && LOST_CODES.has(code)) return true;
  return WAIT_REPLIES.test(error.message);
}

/** Errors that waiting will not fix: a wrong password, a user without the rights. */
export function isConfigProblem(error: unknown): boolean {
  return error instanceof Error && /^(WRONGPASS|NOAUTH|NOPERM|ERR invalid password|ERR DB index)/.test(error.message);
}

/** The error a caller sees for a connection problem, with the URL's password masked. */
export function unavailableError(error: unknown, database: string, what = 'the Redis server is unreachable'): Error {
  const reason = error instanceof Error ? error.message : String(error);
  if (isConfigProblem(error)) {
    return new ConfigError('database', redactIn(`invalid config "database": ${redactUrl(database)}: ${reason}`, database));
  }
  return new StoreUnavailableError(redactIn(`${what} (${redactUrl(database)}): ${reason}`, database));
}

export { backoffMs } from '../backoff.ts';
