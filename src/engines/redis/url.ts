// Which `database` values select the Redis engine, how such a URL may be
// shown (its password never printed back), and what it asks for.

const SCHEME = /^(rediss?)(\+cluster)?:\/\//i;

/** `redis://`, `rediss://`, `redis+cluster://` or `rediss+cluster://`. */
export function isRedisUrl(database: string): boolean {
  return SCHEME.test(database);
}

export function isClusterUrl(database: string): boolean {
  return SCHEME.exec(database)?.[2] !== undefined;
}

/**
 * The URL's parts around its credentials: everything between the scheme and
 * the last '@' of the whole value is the user and password (which may hold
 * an unencoded '@', '/', '?' or '#'); the rest is host, path and query.
 */
function split(database: string): { scheme: string; credentials: string | null; rest: string } | null {
  const scheme = SCHEME.exec(database);
  if (!scheme) return null;
  const after = database.slice(scheme[0].length);
  const at = after.lastIndexOf('@');
  return at === -1
    ? { scheme: scheme[0], credentials: null, rest: after }
    : { scheme: scheme[0], credentials: after.slice(0, at), rest: after.slice(at + 1) };
}

/**
 * The URL with its credentials masked (everything before the last '@') and
 * every query value but waitReplicas: works on strings that do not parse.
 */
export function redactUrl(database: string): string {
  const parts = split(database);
  if (!parts) return database;
  const query = parts.rest.indexOf('?');
  const beforeQuery = query === -1 ? parts.rest : parts.rest.slice(0, query);
  const params =
    query === -1
      ? ''
      : `?${parts.rest
          .slice(query + 1)
          .split('&')
          .map((pair) => (/^waitReplicas=\d*$/.test(pair) || !pair.includes('=') ? pair : `${pair.split('=')[0]}=***`))
          .join('&')}`;
  return `${parts.scheme}${parts.credentials === null ? '' : '***@'}${beforeQuery}${params}`;
}

/** `text` with the URL, its password and its user name masked (an error message from the client, say). */
export function redactIn(text: string, database: string): string {
  const parts = split(database);
  if (!parts) return text;
  let out = text.split(database).join(redactUrl(database));
  if (parts.credentials) {
    const colon = parts.credentials.indexOf(':');
    const secrets =
      colon === -1 ? [parts.credentials] : [parts.credentials, parts.credentials.slice(colon + 1), parts.credentials.slice(0, colon)];
    // Longest first; a secret of fewer than 3 characters would mask every such letter of the message: the URL itself is masked above.
    for (const secret of secrets.flatMap((one) => [one, safeDecode(one)]).sort((a, b) => b.length - a.length)) {
      if (secret.length >= 3) out = out.split(secret).join('***');
    }
  }
  return out;
}

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** What a Redis URL asks for. */
export interface RedisTarget {
  tls: boolean;
  cluster: boolean;
  /** host:port of the server, or the seed nodes of a cluster. */
  hosts: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  /** The logical database (one server only). */
  db: number;
  /** `?waitReplicas=N`: a write batch is acknowledged once N replicas have it. */
  waitReplicas: number;
}

/** The URL's parts, or a reason it cannot be used (never quoting the credentials). */
export function parseRedisUrl(database: string): RedisTarget | string {
  const parts = split(database);
  if (!parts) return 'it is not a redis:// URL';
  const scheme = SCHEME.exec(database)!;
  const tls = scheme[1].toLowerCase() === 'rediss';
  const cluster = scheme[2] !== undefined;
  const queryAt = parts.rest.indexOf('?');
  const beforeQuery = queryAt === -1 ? parts.rest : parts.rest.slice(0, queryAt);
  const slash = beforeQuery.indexOf('/');
  const hostList = slash === -1 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash === -1 ? '' : beforeQuery.slice(slash + 1);
  const hosts: RedisTarget['hosts'] = [];
  for (const part of hostList.split(',')) {
    if (part === '') return 'it names no host';
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]/?#@]+)(?::(\d{1,5}))?$/.exec(part);
    if (!match) return `"${part}" is not a host or host:port`;
    const port = match[2] === undefined ? 6379 : Number(match[2]);
    if (port < 1 || port > 65535) return `port ${match[2]} is out of range`;
    hosts.push({ host: match[1].replace(/^\[|\]$/g, ''), port });
  }
  if (!cluster && hosts.length > 1) return 'it names several hosts: a Redis Cluster is given as redis+cluster://host1:port1,host2:port2';
  let db = 0;
  if (path !== '') {
    if (cluster) return 'a Redis Cluster has no database number (leave the path out)';
    if (!/^\d{1,2}$/.test(path)) return `the path "/${path}" is not a database number (0 to 15 on a default server)`;
    db = Number(path);
  }
  let waitReplicas = 0;
  if (queryAt !== -1) {
    for (const pair of parts.rest.slice(queryAt + 1).split('&')) {
      if (pair === '') continue;
      const [key, value = ''] = pair.split('=');
      if (key !== 'waitReplicas') return `it has the parameter "${key}"; the only one taken is waitReplicas`;
      if (!/^\d{1,2}$/.test(value)) return `waitReplicas must be a whole number of replicas (0 to 99), got "${value}"`;
      waitReplicas = Number(value);
    }
  }
  const credentials = parts.credentials ?? '';
  const colon = credentials.indexOf(':');
  const username = colon === -1 ? credentials : credentials.slice(0, colon);
  const password = colon === -1 ? undefined : credentials.slice(colon + 1);
  return {
    tls,
    cluster,
    hosts,
    username: username === '' ? undefined : safeDecode(username),
    password: password === undefined ? undefined : safeDecode(password),
    db,
    waitReplicas,
  };
}

/** Why a Redis URL cannot be used, or null. */
export function redisUrlProblem(database: string): string | null {
  const parsed = parseRedisUrl(database);
  return typeof parsed === 'string' ? parsed : null;
}
