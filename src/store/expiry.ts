import type { Timestamp } from '../config.ts';

/** The expiry settings of a store, in milliseconds: the one place config seconds become ms. */
export interface ExpiryPolicy {
  maxAgeMs: number;
  timestamp: Timestamp;
  maxLifetimeMs: number | null;
  touchAfterMs: number;
}

export function expiryPolicy(config: {
  maxAge: number;
  timestamp: Timestamp;
  maxLifetime: number | null;
  touchAfter?: number;
}): ExpiryPolicy {
  return {
    maxAgeMs: Math.round(config.maxAge * 1000),
    timestamp: config.timestamp,
    maxLifetimeMs: config.maxLifetime === null ? null : Math.round(config.maxLifetime * 1000),
    touchAfterMs: Math.round((config.touchAfter ?? 0) * 1000),
  };
}

/**
 * The one definition of a live session, shared by reads, counts, the sweep
 * and the CLI. A session's age counts from `base` (touched_at for
 * 'relative', created_at for 'fixed'); it is live while
 * `base + (max_age ?? maxAgeMs) >= now` — `max_age`, in ms, is a lifetime
 * of its own ("remember me"), NULL for the app's `maxAge` — and
 * `created_at >= createdSince` (`maxLifetime`, which caps every session).
 */
export interface LiveThresholds {
  base: 'touched_at' | 'created_at';
  now: number;
  /** The app's maxAge, for sessions without a lifetime of their own. */
  maxAgeMs: number;
  createdSince: number;
}

const NO_LIMIT = Number.MIN_SAFE_INTEGER;

/** Where the base of a session's age is, by the timestamp rule. */
export const baseColumn = (timestamp: Timestamp): 'touched_at' | 'created_at' => (timestamp === 'fixed' ? 'created_at' : 'touched_at');

export function liveThresholds(policy: ExpiryPolicy, now: number): LiveThresholds {
  return {
    base: baseColumn(policy.timestamp),
    now,
    maxAgeMs: policy.maxAgeMs,
    createdSince: policy.maxLifetimeMs === null ? NO_LIMIT : now - policy.maxLifetimeMs,
  };
}

/** The time columns a liveness judgement needs (max_age NULL: the app's maxAge). */
export interface TimedRow {
  created_at: number;
  touched_at: number;
  max_age: number | null;
}

export function isLive(row: TimedRow, live: LiveThresholds): boolean {
  return row[live.base] + (row.max_age ?? live.maxAgeMs) >= live.now && row.created_at >= live.createdSince;
}

/** When a row dies by its age alone (its own lifetime or the app's maxAge), maxLifetime aside (epoch ms). */
export function idleExpiry(policy: ExpiryPolicy, row: TimedRow): number {
  return row[baseColumn(policy.timestamp)] + (row.max_age ?? policy.maxAgeMs);
}

/** When a live row dies if nothing touches it again (epoch ms). */
export function expiresAt(policy: ExpiryPolicy, row: TimedRow): number {
  const age = idleExpiry(policy, row);
  return policy.maxLifetimeMs === null ? age : Math.min(age, row.created_at + policy.maxLifetimeMs);
}

/**
 * Whether a read renews the sliding timestamp: when it is older than
 * `touchAfter`, or than a twentieth of the session's own lifetime when that
 * is shorter (a 5-minute session must not die a minute early).
 */
export function touchAfterFor(policy: ExpiryPolicy, maxAge: number | null): number {
  return maxAge === null ? policy.touchAfterMs : Math.min(policy.touchAfterMs, Math.floor(maxAge / 20));
}

/** The largest lifetime of its own a session may have: ten years, in ms (a bound that keeps every sum of times exact). */
export const MAX_OWN_LIFETIME_MS = 10 * 365 * 86_400_000;
