// The liveness rule (store/expiry.ts) in SQLite's SQL.
import type { LiveThresholds } from '../../store/expiry.ts';

/**
 * The SQL of the liveness rule for SQLite over `prefix`'s columns, with two
 * parameters: now, createdSince (`liveArgs`). Time alone: a renewed id's
 * tombstone (store/renewed.ts) is live by it too.
 */
export function liveSqlite(live: Pick<LiveThresholds, 'base' | 'maxAgeMs'>, prefix = ''): string {
  return `(${prefix}${live.base} + coalesce(${prefix}max_age, ${Math.trunc(live.maxAgeMs)}) >= ? AND ${prefix}created_at >= ?)`;
}

export const liveArgs = (live: LiveThresholds): [number, number] => [live.now, live.createdSince];
