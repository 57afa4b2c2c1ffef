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
    const url = new URL(database);
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
  let url: URL;
  try {
    url = new URL(database);
  } catch {
    return 'it does not parse as a URL';
  }
  if (url.hostname === '' && !url.searchParams.has('host')) return 'it names no host';
  return null;
}
