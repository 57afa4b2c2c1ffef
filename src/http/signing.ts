import { createHmac, timingSafeEqual } from 'node:crypto';

// A signed cookie value is `<id>.<HMAC-SHA256(id) base64url>`. The first
// secret signs; every secret verifies, so a secret can be rotated in without
// logging everyone out. Comparison is constant-time (crypto.timingSafeEqual).

// 32 bytes in base64url, exactly as `sign` writes them: nothing else is a signature.
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

function mac(secret: string, value: string): Buffer {
  return createHmac('sha256', secret).update(value).digest();
}

export function sign(value: string, secret: string): string {
  return `${value}.${mac(secret, value).toString('base64url')}`;
}

/** The signed value, or null when the signature is missing or made with none of the secrets. */
export function unsign(signed: string, secrets: readonly string[]): string | null {
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return null;
  const signature = signed.slice(dot + 1);
  if (!SIGNATURE.test(signature)) return null;
  const value = signed.slice(0, dot);
  // Compared as the exact string we issue: base64url's last character has
  // unused bits, and decoding first would accept variants of a signature.
  // Both sides are ASCII here, so their bytes are their characters.
  const given = Buffer.from(signature, 'latin1');
  let valid = false;
  // Every secret is tried, whatever matched: the time taken does not say which.
  for (const secret of secrets) {
    if (timingSafeEqual(given, Buffer.from(mac(secret, value).toString('base64url'), 'latin1'))) valid = true;
  }
  return valid ? value : null;
}
