// The load generator, in a process of its own: undici Pool, keep-alive,
// a fixed number of connections, pre-created session cookies spread over the
// requests. Bounded in time and in count; 127.0.0.1 only.
import { Pool } from 'undici';

export interface LoadOptions {
  url: string;
  path: '/r' | '/w';
  cookies: string[];
  connections: number;
  seconds: number;
  maxRequests?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  non2xx: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** Server CPU time per request, in microseconds (from its /__stats). */
  cpuPerRequest: number;
  rss: number;
}

async function serverStats(pool: Pool): Promise<{ cpu: number; rss: number }> {
  const response = await pool.request({ path: '/__stats', method: 'GET' });
  return JSON.parse(await response.body.text()) as { cpu: number; rss: number };
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const origin = new URL(options.url).origin;
  if (!/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(origin)) throw new Error(`refusing to load ${origin}: 127.0.0.1 only`);
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const maxRequests = options.maxRequests ?? 5_000_000;
  const latencies = new Float64Array(Math.min(maxRequests, 5_000_000));
  let requests = 0;
  let errors = 0;
  let non2xx = 0;
  let next = 0;
  const before = await serverStats(pool);
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < deadline && requests < maxRequests) {
        const cookie = options.cookies[next++ % options.cookies.length];
        const t0 = performance.now();
        try {
          const response = await pool.request({ path: options.path, method: 'GET', headers: { cookie } });
          await response.body.dump();
          if (response.statusCode < 200 || response.statusCode >= 300) non2xx++;
        } catch {
          errors++;
        }
        if (requests < latencies.length) latencies[requests] = performance.now() - t0;
        requests++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const after = await serverStats(pool);
  await pool.close();
  const sorted = latencies.subarray(0, Math.min(requests, latencies.length)).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
  return {
    requests,
    errors,
    non2xx,
    seconds,
    rps: requests / seconds,
    p50: at(0.5),
    p99: at(0.99),
    cpuPerRequest: (after.cpu - before.cpu) / Math.max(1, requests),
    rss: after.rss,
  };
}

/** Creates `count` sessions through /login and returns their cookies (name=value). */
export async function createSessions(url: string, count: number): Promise<string[]> {
  const pool = new Pool(new URL(url).origin, { connections: 16 });
  const cookies: string[] = new Array(count);
  let index = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (index < count) {
        const i = index++;
        const response = await pool.request({ path: '/login', method: 'GET' });
        await response.body.dump();
        const raw = response.headers['set-cookie'];
        const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
        if (lines.length === 0) throw new Error(`no Set-Cookie from ${url}/login`);
        // Every cookie of the login (koa-session signs in a second one).
        cookies[i] = lines.map((line) => line.split(';')[0]).join('; ');
      }
    }),
  );
  await pool.close();
  return cookies;
}

// Run as a process: argv[2] is a file holding the JSON of LoadOptions (or { create: n, url }).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import('node:fs');
  const input = JSON.parse(readFileSync(process.argv[2], 'utf8')) as LoadOptions | { create: number; url: string };
  const output = 'create' in input ? await createSessions(input.url, input.create) : await load(input);
  process.stdout.write(`${JSON.stringify(output)}\n`);
}
