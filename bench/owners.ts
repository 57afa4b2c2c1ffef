// Owners at scale: sessionsOf and revokeAll of one user's sessions among a
// large table, through app.store (the owner index serves both).
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setupStore, startSessionApp } from '../src/index.ts';
import { median } from './lib.ts';

export interface OwnersResult {
  stored: number;
  owned: number;
  rounds: number;
  /** Medians over rounds, ms. */
  sessionsOfMs: number;
  revokeAllMs: number;
  revoked: number;
}

/** `count` sessions of nobody, written straight into the table. */
function plant(database: string, count: number): void {
  const db = new DatabaseSync(database);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  const now = Date.now();
  db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO session (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{"planted":true}', ?, ? - x FROM c`).run(count, now, now);
  db.close();
}

export async function ownersBenchmark(options: { dir: string; stored: number; owned: number; rounds: number }): Promise<OwnersResult> {
  const database = join(options.dir, 'owners-bench.db');
  await setupStore({ database });
  plant(database, options.stored);
  const sessionsOf: number[] = [];
  const revokeAll: number[] = [];
  let revoked = 0;
  const app = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600 });
  try {
    for (let round = 0; round < options.rounds; round++) {
      await Promise.all(Array.from({ length: options.owned }, (_, i) => app.store.put(null, { device: i }, { owner: 'bench-user' })));
      let t0 = performance.now();
      const list = await app.store.sessionsOf('bench-user');
      sessionsOf.push(performance.now() - t0);
      if (list.length !== options.owned) throw new Error(`sessionsOf listed ${list.length}, not ${options.owned}`);
      t0 = performance.now();
      revoked = await app.store.revokeAll('bench-user');
      revokeAll.push(performance.now() - t0);
      if (revoked !== options.owned) throw new Error(`revokeAll ended ${revoked}, not ${options.owned}`);
    }
  } finally {
    await app.stop();
  }
  return { stored: options.stored, owned: options.owned, rounds: options.rounds, sessionsOfMs: median(sessionsOf), revokeAllMs: median(revokeAll), revoked };
}
