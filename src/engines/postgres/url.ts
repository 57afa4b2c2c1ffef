// Which engine a `database` value selects, and how a PostgreSQL URL may be
// shown: a password in it is never printed back (errors, logs, the CLI).

const SCHEME = /^postgres(?:ql)?:\/\//i;

/** A `postgres://` or `postgresql://` URL selects the PostgreSQL engine; anything else is a SQLite path. */
export function isPostgresUrl(database: string): boolean {
  return SCHEME.test(database);
}

/**
 * The URL with its password (and a `password` query parameter) replaced by
 * `***`. Works on strings that do not parse too: everything between the
 * scheme's `//` user and the last `@` before the host is masked then.
 */
export function redactUrl(database: string): string {
  if (!isPostgresUrl(database)) return database;
  try {
    const url = new URL(database);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()]) {
      if (key.toLowerCase() === 'password' || key.toLowerCase() === 'sslpassword') url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    // Up to the last '@': a password may hold an unencoded '@' of its own.
    return database.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):.*@/i, '$1:***@').replace(/([?&](?:ssl)?password=)[^&]*/gi, '$1***');
  }
}

/** Replaces every occurrence of the URL's password in `text` (an error message from the client, say). */
export function redactIn(text: string, database: string): string {
  if (!isPostgresUrl(database)) return text;
  let out = text.split(database).join(redactUrl(database));
  try {
    // A multi-host URL's credentials are those of each host's URL.
    const targets = postgresTargets(database);
    const url = new URL(typeof targets === 'string' ? database : targets.urls[0]);
    const secrets = [
      url.password,
      decodeURIComponent(url.password),
      url.searchParams.get('password') ?? '',
      url.searchParams.get('sslpassword') ?? '',
    ];
    for (const secret of secrets) if (secret.length >= 1) out = out.split(secret).join('***');
  } catch {
    /* an unparsable URL was refused by the config already */
  }
  return out;
}

/** Why a PostgreSQL URL cannot be used, or null when it parses. */
export function postgresUrlProblem(database: string): string | null {
  const targets = postgresTargets(database);
  if (typeof targets === 'string') return targets;
  for (const one of targets.urls) {
    let url: URL;
    try {
      url = new URL(one);
    } catch {
      return 'it does not parse as a URL';
    }
    if (url.hostname === '' && !url.searchParams.has('host')) return 'it names no host';
  }
  return null;
}

/** What the store asks of each server it connects to (libpq's target_session_attrs, the values a writer can use). */
export type SessionAttrs = 'any' | 'read-write' | 'primary';

export interface PostgresTargets {
  /** One single-host URL per host, in the order given (our own parameters removed). */
  urls: string[];
  /** `host:port` of each, for messages (no credentials). */
  labels: string[];
  /** read-write when several hosts are given and the URL says nothing. */
  attrs: SessionAttrs;
  /** `?pgbouncer=true`: no named prepared statements, no settings in the startup packet. */
  pgbouncer: boolean;
  /** `?maxConnectionLifetime=S` (seconds): a connection older than this is replaced between batches, from the first host again. */
  maxLifetimeMs: number | null;
}

/** The URL's own parameters, read by this engine and not passed on to the server. */
const OWN_PARAMS = new Set(['target_session_attrs', 'pgbouncer', 'maxConnectionLifetime']);
const ATTRS = new Set(['any', 'read-write', 'primary']);

/**
 * Splits a libpq-style multi-host URL (`postgres://u:p@h1:5432,h2:5433/db?…`)
 * into one URL per host, which `pg` (single host only) can parse. A string
 * that names one host is returned as given, our parameters removed.
 */
export function postgresTargets(database: string): PostgresTargets | string {
  const scheme = /^postgres(?:ql)?:\/\//i.exec(database);
  if (!scheme) return 'it is not a postgres:// URL';
  const rest = database.slice(scheme[0].length);
  // The authority ends at the first '/', '?' or '#' after the user info, which
  // ends at the last '@' before the query (a password may hold an unencoded
  // '@', '/' or '#'). Nothing of a malformed authority is echoed in errors:
  // it may hold part of a password.
  const query0 = rest.indexOf('?');
  const at = rest.lastIndexOf('@', query0 === -1 ? rest.length : query0);
  const afterAt = at + 1;
  const endRel = rest.slice(afterAt).search(/[/?#]/);
  const end = endRel === -1 ? rest.length : afterAt + endRel;
  const userinfo = rest.slice(0, afterAt);
  const hostList = rest.slice(afterAt, end);
  let tail = rest.slice(end);
  // Our own parameters are taken out of the query; the rest stays byte for byte.
  const hash = tail.indexOf('#');
  const fragment = hash === -1 ? '' : tail.slice(hash);
  if (hash !== -1) tail = tail.slice(0, hash);
  const q = tail.indexOf('?');
  const path = q === -1 ? tail : tail.slice(0, q);
  const pairs =
    q === -1
      ? []
      : tail
          .slice(q + 1)
          .split('&')
          .filter((pair) => pair !== '');
  const own = new Map<string, string>();
  const kept: string[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
      value = eq === -1 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return 'its query string holds a malformed %-escape';
    }
    if (OWN_PARAMS.has(key)) own.set(key, value);
    else kept.push(pair);
    if (key === 'host' && value.includes(','))
      return 'several hosts go in the URL itself (postgres://user@h1:5432,h2:5432/db), not in its host parameter';
  }
  const query = kept.length > 0 ? `?${kept.join('&')}` : '';
  const hosts = hostList.split(',');
  if (hosts.length > 1 && hosts.some((host) => host === '')) return 'its host list has an empty entry';
  for (let i = 0; i < hosts.length; i++) {
    const port = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hosts[i])?.[1];
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
      return hosts.length > 1
        ? `the port of host ${i + 1} of ${hosts.length} is not a number from 1 to 65535`
        : 'its port is not a number from 1 to 65535';
  }
  const attrs = own.get('target_session_attrs') ?? (hosts.length > 1 ? 'read-write' : 'any');
  if (!ATTRS.has(attrs)) return `target_session_attrs=${attrs} is not supported: the store writes, so it takes read-write, primary or any`;
  const bouncer = own.get('pgbouncer') ?? 'false';
  if (bouncer !== 'true' && bouncer !== 'false') return `pgbouncer=${bouncer} is not true or false`;
  const lifetime = own.get('maxConnectionLifetime');
  if (lifetime !== undefined && !(/^\d+(\.\d+)?$/.test(lifetime) && Number(lifetime) > 0))
    return `maxConnectionLifetime=${lifetime} is not a number of seconds above 0`;
  const urls = hosts.map((host) => `${scheme[0]}${userinfo}${host}${path}${query}${fragment}`);
  return {
    urls,
    labels: hosts.map((host) => host || 'localhost'),
    attrs: attrs as SessionAttrs,
    pgbouncer: bouncer === 'true',
    maxLifetimeMs: lifetime === undefined ? null : Number(lifetime) * 1000,
  };
}
