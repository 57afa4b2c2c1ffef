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
 * The URL with everything before the authority's last '@' (a user, a
 * password, an unencoded '@' or '/' in it) masked, and every query value but
 * waitReplicas: works on strings that do not parse, and on cluster lists.
 */
export function redactUrl(database: string): string {
  const scheme = SCHEME.exec(database);
  if (!scheme) return database;
  const rest = database.slice(scheme[0].length);
  const query = rest.indexOf('?');
  const beforeQuery = query === -1 ? rest : rest.slice(0, query);
  const at = beforeQuery.lastIndexOf('@');
  const authority = at === -1 ? beforeQuery : `***@${beforeQuery.slice(at + 1)}`;
  const params =
    query === -1
      ? ''
      : `?${rest.slice(query + 1).replace(/=([^&]*)/g, (whole, _v, offset, all: string) => (/(^|&)waitReplicas$/i.test(all.slice(0, offset)) ? whole : '=***'))}`;
  return `${scheme[0]}${authority}${params}`;
}

/** `text` with the URL, its password and its user name masked (an error message from the client, say). */
export function redactIn(text: string, database: string): string {
  if (!isRedisUrl(database)) return text;
  let out = text.split(database).join(redactUrl(database));
  const rest = database.slice(SCHEME.exec(database)![0].length);
  const at = rest.split('?')[0].lastIndexOf('@');
  if (at > 0) {
    const credentials = rest.slice(0, at);
    const colon = credentials.indexOf(':');
    const secrets = colon === -1 ? [credentials] : [credentials.slice(colon + 1), credentials];
    for (const secret of secrets) {
      for (const form of [secret, safeDecode(secret)]) if (form.length >= 1) out = out.split(form).join('***');
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

/** The URL's parts, or a reason it cannot be used. */
export function parseRedisUrl(database: string): RedisTarget | string {
  const scheme = SCHEME.exec(database);
  if (!scheme) return 'it is not a redis:// URL';
  const tls = scheme[1].toLowerCase() === 'rediss';
  const cluster = scheme[2] !== undefined;
  const rest = database.slice(scheme[0].length);
  const queryAt = rest.indexOf('?');
  const beforeQuery = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const at = beforeQuery.lastIndexOf('@');
  const credentials = at === -1 ? '' : beforeQuery.slice(0, at);
  const afterAt = beforeQuery.slice(at + 1);
  const slash = afterAt.indexOf('/');
  const hostList = slash === -1 ? afterAt : afterAt.slice(0, slash);
  const path = slash === -1 ? '' : afterAt.slice(slash + 1);
  const hosts: RedisTarget['hosts'] = [];
  for (const part of hostList.split(',')) {
    if (part === '') return 'it names no host';
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(part);
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
    for (const pair of rest.slice(queryAt + 1).split('&')) {
      if (pair === '') continue;
      const [key, value = ''] = pair.split('=');
      if (key !== 'waitReplicas') return `it has the parameter "${key}"; the only one taken is waitReplicas`;
      if (!/^\d{1,2}$/.test(value)) return `waitReplicas must be a whole number of replicas (0 to 99), got "${value}"`;
      waitReplicas = Number(value);
    }
  }
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
  if (typeof parsed === 'string') return parsed;
  if (parsed.cluster)
    return 'a Redis Cluster (redis+cluster://) is not in this release yet: give one server or primary as redis://host:port';
  return null;
}
