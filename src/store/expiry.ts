import type { Timestamp } from '../config.ts';

/** The expiry settings of a store, in milliseconds: the one place config seconds become ms. */
export interface ExpiryPolicy {
  maxAgeMs: number;
  timestamp: Timestamp;
  maxLifetimeMs: number | null;
  touchAfterMs: number;
}

export function expiryPolicy(config: { maxAge: number; timestamp: Timestamp; maxLifetime: number | null; touchAfter?: number }): ExpiryPolicy {
  return {
    maxAgeMs: Math.round(config.maxAge * 1000),
    timestamp: config.timestamp,
    maxLifetimeMs: config.maxLifetime === null ? null : Math.round(config.maxLifetime * 1000),
    touchAfterMs: Math.round((config.touchAfter ?? 0) * 1000),
  };
}

/**
 * The one definition of a live session, shared by reads, counts, the sweep
 * and the CLI: a row is live iff `touched_at >= touchedSince` and
 * `created_at >= createdSince` (dead: either is older). 'relative' ages from
 * the last touch, 'fixed' from creation; `maxLifetime` caps from creation.
 */
export interface LiveThresholds {
  touchedSince: number;
  createdSince: number;
}

const NO_LIMIT = Number.MIN_SAFE_INTEGER;

export function liveThresholds(policy: ExpiryPolicy, now: number): LiveThresholds {
  const lifetime = policy.maxLifetimeMs === null ? NO_LIMIT : now - policy.maxLifetimeMs;
  if (policy.timestamp === 'fixed') {
    return { touchedSince: NO_LIMIT, createdSince: Math.max(now - policy.maxAgeMs, lifetime) };
  }
  return { touchedSince: now - policy.maxAgeMs, createdSince: lifetime };
}

export function isLive(row: { created_at: number; touched_at: number }, thresholds: LiveThresholds): boolean {
  return row.touched_at >= thresholds.touchedSince && row.created_at >= thresholds.createdSince;
}

/** When a live row dies if nothing touches it again (epoch ms). */
export function expiresAt(policy: ExpiryPolicy, row: { created_at: number; touched_at: number }): number {
  const age = policy.timestamp === 'fixed' ? row.created_at + policy.maxAgeMs : row.touched_at + policy.maxAgeMs;
  return policy.maxLifetimeMs === null ? age : Math.min(age, row.created_at + policy.maxLifetimeMs);
}
