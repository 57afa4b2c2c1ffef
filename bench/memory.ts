// Resident memory of the server process with 10k and with 1M stored
// sessions: the main thread keeps no per-session state, and SQLite's page
// cache is bounded, so the two should be alike.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setupStore } from '../src/index.ts';
import type { LoadResult } from './loader.ts';
import { BENCH_DIR, runLoader, startServer } from './lib.ts';

export interface MemoryRow { stored: number; rssMiB: number }

export async function memoryBenchmark(options: { dir: string; sizes: number[]; seconds: number }): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const size of options.sizes) {
    const database = join(options.dir, `memory-${size}.db`);
    await setupStore({ database });
    const db = new DatabaseSync(database);
    db.exec('PRAGMA journal_mode = WAL');
    const now = Date.now();
    db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
      INSERT INTO session (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{"user":"planted","n":0}', ?, ? FROM c`).run(size, now, now);
    db.close();
    const server = await startServer('ours', process.execPath, join(BENCH_DIR, 'servers', 'ours.ts'), { DATABASE: database });
    try {
      const cookies = await runLoader<string[]>({ create: 1000, url: server.url }, options.dir);
      const result = await runLoader<LoadResult>({ url: server.url, path: '/w', cookies, connections: 64, seconds: options.seconds }, options.dir);
      rows.push({ stored: size, rssMiB: result.rss / 1024 / 1024 });
    } finally {
      await server.stop();
    }
  }
  return rows;
}
