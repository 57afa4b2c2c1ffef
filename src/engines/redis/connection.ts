// One node-redis client per actor, created in the actor's own thread from the
// URL (client objects cannot cross threads). Client-side caching stays off:
// a read must see the latest logout, not an invalidation still on its way.
import { createClient, createCluster } from 'redis';
import { ConfigError, StoreUnavailableError } from '../../errors.ts';
import { parseRedisUrl, redactIn, redactUrl } from './url.ts';

/** One server's connection. */
export type Client = ReturnType<typeof createClient>;
type Cluster = ReturnType<typeof createCluster>;

/** A node's connection, for what runs per server (SCAN, CONFIG GET, CLIENT PAUSE). */
export interface NodeClient {
  sendCommand(command: string[]): Promise<unknown>;
}

/**
 * What the engine talks to: one server, or a Redis Cluster (node-redis's
 * cluster client, which follows MOVED and ASK and learns a failover's new
 * primaries). A command goes to the node that holds its first key.
 */
export interface Conn {
  readonly cluster: boolean;
  readonly isOpen: boolean;
  send(key: string | undefined, command: string[]): Promise<unknown>;
  /** Every primary's connection (one server: itself). */
  primaries(): Promise<NodeClient[]>;
  destroy(): void;
}

class ServerConn implements Conn {
  readonly cluster = false;
  readonly #client: Client;
  constructor(client: Client) {
    this.#client = client;
  }
  get isOpen(): boolean {
    return this.#client.isOpen;
  }
  send(_key: string | undefined, command: string[]): Promise<unknown> {
    return this.#client.sendCommand(command);
  }
  async primaries(): Promise<NodeClient[]> {
    return [this.#client];
  }
  destroy(): void {
    this.#client.destroy();
  }
}

class ClusterConn implements Conn {
  readonly cluster = true;
  readonly #cluster: Cluster;
  constructor(cluster: Cluster) {
    this.#cluster = cluster;
  }
  get isOpen(): boolean {
    return this.#cluster.isOpen;
  }
  send(key: string | undefined, command: string[]): Promise<unknown> {
    return this.#cluster.sendCommand(key, false, command);
  }
  async primaries(): Promise<NodeClient[]> {
    return Promise.all(this.#cluster.masters.map((node) => this.#cluster.nodeClient(node) as Promise<NodeClient>));
  }
  destroy(): void {
    this.#cluster.destroy();
  }
}

export interface ConnectOptions {
  database: string;
  /** ms: how long connecting may take. */
  timeoutMs: number;
  /** ms: how long node-redis lets a command wait for its reply (the store's own deadline comes first). */
  commandTimeoutMs?: number;
  name?: string;
}

/** Opens a connection; it reconnects by itself after a lost connection. */
export async function connect(options: ConnectOptions): Promise<Conn> {
  const target = parseRedisUrl(options.database);
  if (typeof target === 'string') throw new ConfigError('database', `invalid config "database": ${redactUrl(options.database)}: ${target}`);
  const { host, port } = target.hosts[0];
  const socket = {
    tls: target.tls,
    connectTimeout: Math.max(250, Math.ceil(options.timeoutMs)),
    keepAlive: true,
    // Reconnect forever with a capped backoff: the actor bounds every call by requestTimeout.
    reconnectStrategy: (retries: number) => Math.min(1000, 25 * 2 ** Math.min(retries, 6)),
  };
  const common = {
    // Redis Enterprise's maintenance push notifications: off (the handshake would probe for them).
    maintNotifications: 'disabled',
    // A command not sent when the connection is lost fails at once (never
    // sent later, after its caller was told it failed, or out of order with
    // the calls sent again): the store sends it again itself, in order.
    disableOfflineQueue: true,
    commandOptions: { timeout: Math.ceil(options.commandTimeoutMs ?? options.timeoutMs + 5000) },
    username: target.username,
    password: target.password,
    // A name with a space is refused by CLIENT SETNAME (and the handshake would be retried forever).
    name: (options.name ?? 'supervised-sessions').replace(/\s/g, '-'),
  };
  if (target.cluster) {
    const cluster = createCluster({
      RESP: 2,
      rootNodes: target.hosts.map((one) => ({ socket: { host: one.host, port: one.port, tls: target.tls } })),
      defaults: { ...common, socket },
      useReplicas: false,
      // A failover: the slots' new primary is asked for soon after a node stops answering (the default waits 5 s).
      topologyRefreshOnReconnectionAttemptStrategy: 100,
      maxCommandRedirections: 16,
    } as unknown as Parameters<typeof createCluster>[0]);
    return open(new ClusterConn(cluster), cluster, options.timeoutMs);
  }
  const client = createClient({
    RESP: 2,
    ...common,
    database: target.db,
    socket: { host, port, ...socket },
  } as Parameters<typeof createClient>[0]);
  return open(new ServerConn(client), client, options.timeoutMs);
}

async function open(conn: Conn, client: Client | Cluster, timeoutMs: number): Promise<Conn> {
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
    await withTimeout(Promise.race([client.connect() as Promise<unknown>, handshake]), timeoutMs, 'connecting');
  } catch (error) {
    await closeClient(conn);
    throw error;
  }
  return conn;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Closes a client whatever its state; never throws. */
export async function closeClient(client: Conn | null): Promise<void> {
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
/** Replies that waiting fixes: a server loading its AOF, a replica, a failover or a slot migration in progress. */
const WAIT_REPLIES =
  /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY|NOREPLICAS)\b|^(ERR )?Script attempted to access a non local key in a cluster node/;

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
