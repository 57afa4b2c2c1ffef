import { checker, COOKIE_CAP_SECONDS, EXPRESS_SESSION_HINTS, tooLongForACookie, type Checker } from '../validation.ts';
import type { IncomingMessage } from 'node:http';

export interface CookieOptions {
  path?: string;
  httpOnly?: boolean;
  sameSite?: 'lax' | 'strict' | 'none' | boolean;
  /** `'auto'`: Secure exactly when the request came over HTTPS (a TLS socket, or X-Forwarded-Proto with trustProxy). */
  secure?: boolean | 'auto';
  domain?: string;
  /** Seconds; absent: a browser-session cookie. */
  maxAge?: number;
  /**
   * CHIPS: the cookie is kept per top-level site (`Partitioned`). Requires
   * `secure` (true, or 'auto': then only a cookie sent over HTTPS carries it).
   */
  partitioned?: boolean;
  /** Chrome's `Priority` attribute: which cookies go last when a site holds too many. */
  priority?: 'low' | 'medium' | 'high';
}

/**
 * The options of every front door. `Req` is what the front door's requests
 * are (node's IncomingMessage for createHandler, Express and Fastify), as
 * onError is told.
 */
export interface HandlerOptions<Req = IncomingMessage> {
  key?: string;
  secret?: string | string[];
  cookie?: CookieOptions;
  onError?: (error: Error, req: Req) => void;
  /** Believe X-Forwarded-Proto from the proxy in front (for cookie.secure: 'auto'). */
  trustProxy?: boolean;
  /**
   * `false` for a request (a polling or health route) that must neither renew
   * the session's sliding timestamp nor re-send its cookie. Its changes, if
   * it makes any, are stored as on every request.
   */
  touch?: (req: Req) => boolean;
}

export interface ResolvedHandlerOptions<Req = IncomingMessage> {
  key: string;
  secrets: string[];
  cookie: Required<Omit<CookieOptions, 'domain' | 'maxAge' | 'priority'>> & {
    domain?: string;
    maxAge?: number;
    priority?: 'low' | 'medium' | 'high';
  };
  onError: (error: Error, req: Req) => void;
  trustProxy: boolean;
  touch: ((req: Req) => boolean) | null;
}

// RFC 6265 cookie-name: a token (no separators, no controls).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The default onError: one line on stderr for the first error of each kind, then quiet for that kind. */
function logOnce(): (error: Error) => void {
  const seen = new Set<string>();
  return (error) => {
    const kind = `${error.name}:${(error as { code?: string }).code ?? ''}`;
    if (seen.has(kind)) return;
    seen.add(kind);
    process.stderr.write(
      `supervised-sessions: ${error.name}: ${error.message} (further errors of this kind are not logged; pass onError to see them all)\n`,
    );
  };
}

/** `name`: the front door whose options these are, as its errors name it. */
export function resolveHandlerOptions<Req>(input: HandlerOptions<Req> | undefined, name = 'createHandler'): ResolvedHandlerOptions<Req> {
  const check = checker({ invalid: `${name} option`, unknown: `${name} option`, known: 'known', hints: EXPRESS_SESSION_HINTS });
  const fail: Checker['fail'] = check.fail;
  const refuseUnknown: Checker['refuseUnknown'] = check.refuseUnknown;
  const options = input ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) fail('options', options, 'an object');
  refuseUnknown(options, ['key', 'secret', 'cookie', 'onError', 'trustProxy', 'touch'], '');
  const key = options.key ?? 'sid';
  if (typeof key !== 'string' || !TOKEN.test(key)) fail('key', key, "a cookie name (letters, digits and !#$%&'*+-.^_`|~)");
  let secrets: string[] = [];
  if (options.secret !== undefined) {
    const list = Array.isArray(options.secret) ? options.secret : [options.secret];
    if (list.length === 0 || list.some((secret) => typeof secret !== 'string' || secret.length === 0)) {
      fail('secret', options.secret, 'a non-empty string or a non-empty array of them');
    }
    secrets = [...list];
  }
  const given = options.cookie ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) fail('cookie', given, 'an object');
  refuseUnknown(given, ['path', 'httpOnly', 'sameSite', 'secure', 'domain', 'maxAge', 'partitioned', 'priority'], 'cookie.');
  const cookie = {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as CookieOptions['sameSite'],
    secure: false as CookieOptions['secure'],
    partitioned: false,
    ...stripUndefined(given),
  };
  if (typeof cookie.path !== 'string' || !cookie.path.startsWith('/') || /[;\s]/.test(cookie.path))
    fail('cookie.path', cookie.path, 'a path starting with "/"');
  if (typeof cookie.httpOnly !== 'boolean') fail('cookie.httpOnly', cookie.httpOnly, 'true or false');
  if (typeof cookie.secure !== 'boolean' && cookie.secure !== 'auto') fail('cookie.secure', cookie.secure, "true, false or 'auto'");
  if (!['lax', 'strict', 'none', true, false].includes(cookie.sameSite as never))
    fail('cookie.sameSite', cookie.sameSite, "'lax', 'strict', 'none', true or false");
  if (cookie.sameSite === 'none' && cookie.secure !== true)
    fail(
      'cookie.sameSite',
      cookie.sameSite,
      "'lax' or 'strict' unless cookie.secure is true (browsers drop SameSite=None cookies that are not Secure)",
    );
  if (cookie.domain !== undefined && (typeof cookie.domain !== 'string' || !/^\.?[A-Za-z0-9.-]+$/.test(cookie.domain)))
    fail('cookie.domain', cookie.domain, 'a domain name');
  // Max-Age counts whole seconds: below 1 it would be 0, which expires the cookie at once.
  if (cookie.maxAge !== undefined && (typeof cookie.maxAge !== 'number' || !Number.isFinite(cookie.maxAge) || cookie.maxAge < 1))
    fail('cookie.maxAge', cookie.maxAge, 'a number of seconds >= 1');
  // express-session's cookie.maxAge counts milliseconds: 86400000 (a day there) would be 1,000 days here.
  if (cookie.maxAge !== undefined && cookie.maxAge > COOKIE_CAP_SECONDS)
    tooLongForACookie('cookie.maxAge', `${name} option`, cookie.maxAge);
  if (typeof cookie.partitioned !== 'boolean') fail('cookie.partitioned', cookie.partitioned, 'true or false');
  if (cookie.partitioned && cookie.secure === false)
    fail(
      'cookie.partitioned',
      cookie.partitioned,
      "false unless cookie.secure is true or 'auto' (browsers drop Partitioned cookies that are not Secure)",
    );
  if (cookie.priority !== undefined && !['low', 'medium', 'high'].includes(cookie.priority as never))
    fail('cookie.priority', cookie.priority, "'low', 'medium' or 'high'");
  if (options.touch !== undefined && typeof options.touch !== 'function') fail('touch', options.touch, 'a function (req) => boolean');
  if (options.onError !== undefined && typeof options.onError !== 'function') fail('onError', options.onError, 'a function');
  if (options.trustProxy !== undefined && typeof options.trustProxy !== 'boolean') fail('trustProxy', options.trustProxy, 'true or false');
  return {
    key,
    secrets,
    cookie: cookie as ResolvedHandlerOptions<Req>['cookie'],
    onError: options.onError ?? logOnce(),
    trustProxy: options.trustProxy ?? false,
    touch: options.touch ?? null,
  };
}

function stripUndefined<T extends object>(object: T): Partial<T> {
  const result: Partial<T> = {};
  for (const [key, value] of Object.entries(object)) if (value !== undefined) (result as Record<string, unknown>)[key] = value;
  return result;
}
