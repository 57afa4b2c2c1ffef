// Store throughput through app.store (mailbox + store actor + group commit)
// against node:sqlite used directly on the main thread: same schema, same
// statements, same pragmas, one autocommit transaction per operation.
import { hash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startSessionApp } from '../src/index.ts';
import { openDatabase } from '../src/engines/sqlite/connection.ts';
import { setupTable } from '../src/engines/sqlite/schema.ts';

export interface StoreRow {
  op: 'get' | 'put' | 'patch';
  concurrency: number;
  store: number;
  direct: number;
  ratio: number;
}

const SESSIONS = 2000;

async function throughput(seconds: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      let i = worker;
      while (performance.now() < deadline && done < 5_000_000) {
        await op(i);
        i += concurrency;
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

function directThroughput(seconds: number, op: (i: number) => void): number {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < deadline && done < 5_000_000) {
    // Check the clock every 64 operations: the loop is synchronous.
    for (let k = 0; k < 64; k++) op(done++);
  }
  return done / ((performance.now() - started) / 1000);
}

export async function storeBenchmark(options: { dir: string; seconds: number }): Promise<StoreRow[]> {
  const app = await startSessionApp({ database: join(options.dir, 'store-bench.db'), sweepSignal: false, cleanerInterval: 3600 });
  const direct = openDatabase({ database: join(options.dir, 'direct-bench.db') });
  setupTable(direct, 'session');
  try {
    const data = { user: 'ada', n: 0, roles: ['reader', 'writer'] };
    const ids = (await Promise.all(Array.from({ length: SESSIONS }, () => app.store.put(null, data)))) as string[];
    const directIds = Array.from({ length: SESSIONS }, () => randomBytes(32).toString('base64url'));
    const json = JSON.stringify(data);
    const now = Date.now();
    const insert = direct.prepare('INSERT INTO session (sid_hash, data, created_at, touched_at) VALUES (?, ?, ?, ?)');
    for (const id of directIds) insert.run(hash('sha256', id, 'buffer'), json, now, now);
    const select = direct.prepare('SELECT data, created_at, touched_at FROM session WHERE sid_hash = ?');
    const update = direct.prepare('UPDATE session SET data = ?, touched_at = ? WHERE sid_hash = ? AND touched_at >= ? AND created_at >= ?');
    const updateData = direct.prepare('UPDATE session SET data = ?, touched_at = ? WHERE sid_hash = ?');
    const maxAge = 86_400_000;
    const directOps = {
      get: (i: number) => {
        const row = select.get(hash('sha256', directIds[i % SESSIONS], 'buffer')) as { data: string };
        JSON.parse(row.data);
      },
      put: (i: number) => {
        update.run(
          JSON.stringify({ ...data, n: i }),
          Date.now(),
          hash('sha256', directIds[i % SESSIONS], 'buffer'),
          Date.now() - maxAge,
          Number.MIN_SAFE_INTEGER,
        );
      },
      patch: (i: number) => {
        const key = hash('sha256', directIds[i % SESSIONS], 'buffer');
        const row = select.get(key) as { data: string };
        const value = JSON.parse(row.data) as Record<string, unknown>;
        value.n = i;
        updateData.run(JSON.stringify(value), Date.now(), key);
      },
    };
    const storeOps = {
      get: (i: number) => app.store.get(ids[i % SESSIONS]),
      put: (i: number) => app.store.put(ids[i % SESSIONS], { ...data, n: i }),
      patch: (i: number) => app.store.patch(ids[i % SESSIONS], { set: { n: i } }),
    };
    const rows: StoreRow[] = [];
    for (const op of ['get', 'put', 'patch'] as const) {
      // A synchronous API has no concurrency: one figure serves both rows.
      const directRate = directThroughput(options.seconds, directOps[op]);
      for (const concurrency of [1, 64]) {
        const rate = await throughput(options.seconds, concurrency, storeOps[op]);
        rows.push({ op, concurrency, store: rate, direct: directRate, ratio: rate / directRate });
      }
    }
    return rows;
  } finally {
    direct.close();
    await app.stop();
  }
}
