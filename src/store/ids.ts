import { hash, randomBytes } from 'node:crypto';

const ID_BYTES = 32; // 256 bits, as the contract requires
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

// Ids come from crypto.randomBytes, drawn 64 at a time: one call into the
// CSPRNG per 64 sessions instead of one per session.
let pool = Buffer.alloc(0);
let offset = 0;

/** A new session id: 256 random bits, base64url (43 characters). */
export function newSessionId(): string {
  if (offset + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * 64);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES);
  // Wipe what was handed out, so a later heap dump cannot replay it.
  pool.fill(0, offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

/**
 * A new id whose digest starts with the same byte as `sid`'s (a Redis
 * Cluster keeps a session's keys in the slot of that byte: engines/redis):
 * ids are drawn until one matches, about 256 draws (half a millisecond),
 * each a full 256-bit id. Nothing of the old id is kept; to its holder, the
 * new one's digest's first byte is known (248 unknown bits).
 */
export function newSessionIdLike(sid: string): string {
  const group = hash('sha256', sid, 'buffer')[0];
  for (;;) {
    const next = newSessionId();
    if (hash('sha256', next, 'buffer')[0] === group) return next;
  }
}

/** True for a string that could be one of our ids; anything else is unknown without a store call. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

// A handle names one session in a list ("your devices") without being its
// id: 'h' + the base64url SHA-256 digest the row is keyed by. It is stable
// (the digest of an id never changes), distinct per session, one character
// longer than an id (so it never passes for one), and useless as a cookie: a
// cookie is hashed before lookup, and the digest of a digest names no row.
const HANDLE_PATTERN = /^h[A-Za-z0-9_-]{43}$/;

export function handleFromDigest(digest: Uint8Array): string {
  return `h${Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('base64url')}`;
}

/** The row key a handle names, or null for anything that is not a handle. */
export function digestFromHandle(handle: unknown): Buffer | null {
  if (typeof handle !== 'string' || !HANDLE_PATTERN.test(handle)) return null;
  const digest = Buffer.from(handle.slice(1), 'base64url');
  // Only the exact form handleFromDigest writes (base64url's last character has spare bits).
  return digest.length === 32 && handleFromDigest(digest) === handle ? digest : null;
}

export function handleOf(sid: string): string {
  return handleFromDigest(hash('sha256', sid, 'buffer'));
}

/** An owner is a user id: a non-empty string of at most 256 characters. */
export function assertOwner(owner: unknown, where: string): asserts owner is string {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 256) {
    const got = typeof owner === 'string' ? `a string of ${owner.length} characters` : owner === null ? 'null' : typeof owner;
    throw new TypeError(`${where}: owner must be a non-empty string of at most 256 characters, got ${got}`);
  }
  // A lone surrogate would be stored as U+FFFD: two different owners would become one.
  if (!owner.isWellFormed()) throw new TypeError(`${where}: owner must be well-formed Unicode (it has a lone surrogate)`);
  // PostgreSQL's text cannot hold U+0000: refused on every engine alike.
  if (owner.includes('\0')) throw new TypeError(`${where}: owner must not contain the character U+0000`);
}

// Rows are keyed by SHA-256 of the id: the database never holds a raw id.
// A read-modify-write hashes the same id twice in a row (load, then patch),
// so the last digests are kept; the cache is bounded and simply dropped when
// full. Each store-actor thread has its own.
const digests = new Map<string, Buffer>();
const DIGEST_CACHE = 4096;

/** The row key of a session id (or of an express-session key). */
export function digest(sid: string): Buffer {
  let value = digests.get(sid);
  if (value === undefined) {
    value = hash('sha256', sid, 'buffer');
    if (digests.size >= DIGEST_CACHE) digests.clear();
    digests.set(sid, value);
  }
  return value;
}
