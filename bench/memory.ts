// Resident memory. First the bare node:http server and ours (sliding cookie
// on) side by side, idle and after a W load, in the same run; then ours with
// 10k and with 1M stored sessions: the main thread keeps no per-session
// state, and SQLite's page cache is bounded, so the two should be alike.
// Linux cannot split a process's RSS by thread (threads share one address
// space); the main thread's V8 heap is reported beside it (process.memoryUsage()).
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { request } from 'undici';
import { setupStore } from '../src/index.ts';
import type { LoadResult } from './loader.ts';
import { BENCH_DIR, runLoader, sleep, startServer, type RunningServer, sessionCookies } from './lib.ts';

export interface MemoryRow {
  stored: number;
  rssMiB: number;
  flags?: string;
}
export interface MemoryBaseline {
  server: string;
  label: string;
  flags?: string;
  idleMiB: number;
  afterWMiB: number;
  idleHeapMiB: number;
  afterWHeapMiB: number;
}

/** The V8 flag docs/operating.md suggests for a small container: the main thread's young generation capped. */
export const SMALL_HEAP_FLAGS = '--max-semi-space-size=2';
export interface MemoryResult {
  baselines: MemoryBaseline[];
  stored: MemoryRow[];
}

const MiB = 1024 * 1024;

async function stats(server: RunningServer): Promise<{ rss: number; heapTotal: number }> {
  const response = await request(`${server.url}/__stats`);
  return JSON.parse(await response.body.text()) as { rss: number; heapTotal: number };
}

export async function memoryBenchmark(options: {
  dir: string;
  sizes: number[];
  seconds: number;
  settleMs?: number;
}): Promise<MemoryResult> {
  const baselines: MemoryBaseline[] = [];
  const servers = [
    { name: 'bare', label: 'bare node:http (no sessions)', script: 'bare.mjs' },
    { name: 'ours-maxage', label: 'supervised-sessions, cookie.maxAge set', script: 'ours.mjs' },
    // The hop alone: requests held across a round trip to another thread, no session.
    {
      name: 'bare-hop',
      label: 'bare node:http + the mailbox round trips alone, to an echo thread (R one, W two; no sessions)',
      script: 'bare-hop.mjs',
    },
    { name: 'bare', label: 'bare node:http (no sessions)', script: 'bare.mjs', flags: SMALL_HEAP_FLAGS },
    { name: 'ours-maxage', label: 'supervised-sessions, cookie.maxAge set', script: 'ours.mjs', flags: SMALL_HEAP_FLAGS },
  ];
  for (const spec of servers) {
    const env = {
      DATABASE: join(options.dir, `memory-${spec.name}-${spec.flags ? 'flags' : 'default'}.db`),
      COOKIE_MAX_AGE: '86400',
      ...(spec.flags ? { NODE_OPTIONS: spec.flags } : {}),
    };
    const server = await startServer(spec.name, process.execPath, join(BENCH_DIR, 'servers', spec.script), env);
    try {
      // Idle: started, the loader not yet connected.
      await sleep(options.settleMs ?? 2000);
      const idle = await stats(server);
      const cookies = await sessionCookies(spec.name, server.url, options.dir);
      await runLoader<LoadResult>({ url: server.url, path: '/w', cookies, connections: 64, seconds: options.seconds }, options.dir);
      const after = await stats(server);
      baselines.push({
        server: spec.name,
        label: spec.label,
        flags: spec.flags,
        idleMiB: idle.rss / MiB,
        afterWMiB: after.rss / MiB,
        idleHeapMiB: idle.heapTotal / MiB,
        afterWHeapMiB: after.heapTotal / MiB,
      });
    } finally {
      await server.stop();
    }
  }
  const stored: MemoryRow[] = [];
  // Each size with default flags and with the small-heap flags: under the
  // default flags the young generation's state after the load moves RSS by
  // more than the stored rows do.
  // The rows are planted once per size; the second server on a file finds
  // the first one's 1,000 sessions there too.
  const database = (size: number) => join(options.dir, `memory-${size}.db`);
  for (const size of options.sizes) {
    await setupStore({ database: database(size) });
    const db = new DatabaseSync(database(size));
    db.exec('PRAGMA journal_mode = WAL');
    const now = Date.now();
    db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
      INSERT INTO session (sid_hash, data, created_at, touched_at) SELECT randomblob(32), '{"user":"planted","n":0}', ?, ? FROM c`).run(
      size,
      now,
      now,
    );
    db.close();
  }
  for (const flags of [undefined, SMALL_HEAP_FLAGS])
    for (const size of options.sizes) {
      const server = await startServer('ours', process.execPath, join(BENCH_DIR, 'servers', 'ours.mjs'), {
        DATABASE: database(size),
        COOKIE_MAX_AGE: '86400',
        ...(flags ? { NODE_OPTIONS: flags } : {}),
      });
      try {
        const cookies = await runLoader<string[]>({ create: 1000, url: server.url }, options.dir);
        const result = await runLoader<LoadResult>(
          { url: server.url, path: '/w', cookies, connections: 64, seconds: options.seconds },
          options.dir,
        );
        stored.push({ stored: size, rssMiB: result.rss / MiB, flags });
      } finally {
        await server.stop();
      }
    }
  return { baselines, stored };
}
