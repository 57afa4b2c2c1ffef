import { randomBytes } from 'node:crypto';

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

/** True for a string that could be one of our ids; anything else is unknown without a store call. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}
