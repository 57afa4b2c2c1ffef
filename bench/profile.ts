// npm run bench:profile -- [--server=ours|bare|bare-hop|express-ours|fastify-ours] [--maxage] [--workload=R|W] [--seconds=8] [--top=20]
// Runs one benchmark server under `node --cpu-prof`, loads it as the HTTP
// benchmark does, and prints the top frames by self time, per thread
// (each thread writes its own profile). For naming where the CPU goes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from './loader.ts';
import { BENCH_DIR, buildPackage, runLoader, scratch, startServer, sessionCookies } from './lib.ts';

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, value ?? 'true'] as const;
  }),
);
const server = args.get('server') ?? 'ours';
const workload = args.get('workload') ?? 'R';
const seconds = Number(args.get('seconds') ?? 8);
const top = Number(args.get('top') ?? 20);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

function summarize(profile: Profile, limit = top): { totalMs: number; frames: Array<{ frame: string; ms: number; share: number }> } {
  const interval = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
  const byFrame = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)' || hits === 0) continue;
    const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}` : '';
    const frame = `${functionName || '(anonymous)'} ${where}`.trim();
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + hits * interval);
    busy += hits * interval;
  }
  const frames = [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, ms]) => ({ frame, ms, share: ms / busy }));
  return { totalMs: busy, frames };
}

buildPackage((line) => process.stderr.write(`${line}\n`));
const temp = scratch('bench-profile-');
try {
  const env: NodeJS.ProcessEnv = { DATABASE: join(temp.dir, 'profile.db'), ...(args.has('maxage') ? { COOKIE_MAX_AGE: '86400' } : {}) };
  const script = join(BENCH_DIR, 'servers', `${server}.mjs`);
  const running = await startServer(server, process.execPath, script, env, ['--cpu-prof', `--cpu-prof-dir=${temp.dir}`]);
  let result: LoadResult;
  let served = 0;
  try {
    const cookies = await sessionCookies(server, running.url, temp.dir);
    const warmup = await runLoader<LoadResult>(
      { url: running.url, path: `/${workload.toLowerCase()}`, cookies, connections: 64, seconds: 2 },
      temp.dir,
    );
    result = await runLoader<LoadResult>(
      { url: running.url, path: `/${workload.toLowerCase()}`, cookies, connections: 64, seconds },
      temp.dir,
    );
    // A profile covers the thread's whole life: every request it served.
    served = (server.startsWith('bare') ? 0 : cookies.length) + warmup.requests + result.requests;
  } finally {
    // Stopped gracefully, so that every thread writes its profile.
    await running.stop();
  }
  console.log(
    `${server}${args.has('maxage') ? ' (cookie.maxAge)' : ''} ${workload}: ${Math.round(result.rps)} req/s, ${result.cpuPerRequest.toFixed(1)} µs CPU/req (all threads, from /__stats)`,
  );
  if (args.has('json')) console.log(`SERVED ${served}`);
  const files = readdirSync(temp.dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort();
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(temp.dir, file), 'utf8')) as Profile;
    const { totalMs, frames } = summarize(profile);
    // Profiles cover the whole life of the thread: the share is what to read.
    console.log(`\n## ${file} — ${totalMs.toFixed(0)} ms busy`);
    if (args.has('json')) console.log(`FRAMES ${JSON.stringify(summarize({ ...profile }, Infinity).frames)}`);
    for (const { frame, ms, share } of frames)
      console.log(`${(100 * share).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${frame}`);
  }
} finally {
  temp.remove();
}
