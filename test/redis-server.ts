// A real redis-server for the tests, the drill and the benchmark, started in
// a scratch folder on a free port of 127.0.0.1 and stopped at the end — even
// when a test fails or the run is interrupted (the server is a child of this
// process, and the exit hook kills it).
//
// Binaries: $SUPERVISED_SESSIONS_REDIS_BIN (a folder), else redis-server on
// PATH (Debian's package: `.ci/run` installs it), else Debian's packages
// unpacked into .tmp/redis without installing (`apt-get download` and
// `dpkg -x`, run with LD_LIBRARY_PATH).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

export interface RedisBinaries {
  server: string;
  cli: string;
  env: NodeJS.ProcessEnv;
}

function onPath(name: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : null;
}

function unpacked(): RedisBinaries | null {
  const dir = join(root, '.tmp', 'redis');
  const server = join(dir, 'usr', 'bin', 'redis-server');
  if (!existsSync(server)) {
    mkdirSync(dir, { recursive: true });
    const download = spawnSync('apt-get', ['download', 'redis-server', 'redis-tools', 'libjemalloc2', 'liblzf1'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (download.status !== 0) return null;
    for (const deb of readdirSync(dir).filter((name) => name.endsWith('.deb'))) {
      spawnSync('dpkg', ['-x', join(dir, deb), dir], { timeout: 60_000 });
    }
    if (!existsSync(server)) return null;
  }
  return {
    server,
    cli: join(dir, 'usr', 'bin', 'redis-cli'),
    env: { ...process.env, LD_LIBRARY_PATH: join(dir, 'usr', 'lib', 'x86_64-linux-gnu') },
  };
}

let binaries: RedisBinaries | null | undefined;

/** Where redis-server and redis-cli are, or why there are none (the suites then say so loudly). */
export function redisBinaries(): RedisBinaries {
  if (binaries === undefined) {
    const folder = process.env.SUPERVISED_SESSIONS_REDIS_BIN;
    if (folder) binaries = { server: join(folder, 'redis-server'), cli: join(folder, 'redis-cli'), env: process.env };
    else {
      const server = onPath('redis-server');
      const cli = onPath('redis-cli');
      binaries = server && cli ? { server, cli, env: process.env } : unpacked();
    }
  }
  if (!binaries) {
    throw new Error(
      'no redis-server: it is not on PATH, and `apt-get download redis-server redis-tools libjemalloc2 liblzf1` failed (install the Debian package redis-server)',
    );
  }
  return binaries;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** SIGKILL: a crash of Redis (AOF replays at the next start). */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** The running server's process id, or null. */
  pid(): number | null;
  /** Runs redis-cli against it; resolves with its output. */
  cli(...args: string[]): string;
  /** Stops it and removes its folder. Idempotent. */
  destroy(): void;
}

const live = new Set<RedisServer>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const server of live) server.destroy();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const server of live) server.destroy();
      process.kill(process.pid, signal);
    });
  }
}

/** Resolves once the server answers PING (or rejects after `ms`). */
async function answering(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.setTimeout(500);
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (data) => {
        socket.destroy();
        // -NOAUTH: a server with requirepass, answering.
        resolve(/^(\+PONG|-NOAUTH)/.test(data.toString()));
      });
      socket.on('error', () => resolve(false));
      socket.on('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on 127.0.0.1:${port} did not answer within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A fresh server with AOF on and `appendfsync always` (a SIGKILL of it loses
 * no acknowledged write), no RDB snapshots, on 127.0.0.1 only.
 */
export async function startRedis(options: { settings?: Record<string, string> } = {}): Promise<RedisServer> {
  const bin = redisBinaries();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'supervised-sessions-redis-'));
  const settings: Record<string, string> = {
    port: String(port),
    bind: '127.0.0.1',
    'protected-mode': 'yes',
    dir,
    appendonly: 'yes',
    appendfsync: 'always',
    save: '',
    daemonize: 'no',
    logfile: join(dir, 'redis.log'),
    ...options.settings,
  };
  const args = Object.entries(settings).flatMap(([key, value]) => [`--${key}`, value]);
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(bin.server, args, { stdio: 'ignore', env: bin.env });
    child.on('error', () => {});
    // The exit hook kills it: it never keeps a finished test process alive.
    child.unref();
    await answering(port, 10_000);
  };
  const stopChild = (): Promise<void> => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null || running.signalCode !== null) return Promise.resolve();
    // Held until it is gone: an unref'd child's exit alone would not keep this process waiting.
    running.ref();
    return new Promise((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    kill: stopChild,
    start,
    pid: () => (child as ChildProcess | null)?.pid ?? null,
    cli: (...cliArgs) => {
      const result = spawnSync(bin.cli, ['-h', '127.0.0.1', '-p', String(port), ...cliArgs], {
        encoding: 'utf8',
        env: bin.env,
        timeout: 30_000,
      });
      return `${result.stdout ?? ''}${result.stderr ?? ''}`;
    },
    destroy: () => {
      live.delete(server);
      const running = child;
      child = null;
      if (running && running.exitCode === null) running.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  hookExit();
  live.add(server);
  try {
    await start();
  } catch (error) {
    server.destroy();
    throw error;
  }
  return server;
}

export interface RedisCluster {
  /** redis+cluster:// with every primary as a seed. */
  url: string;
  /** Its six servers: three primaries and their replicas (roles change at a failover). */
  nodes: RedisServer[];
  /** The server that is the primary of `slot` now. */
  primaryOf(slot: number): RedisServer;
  /** Waits until every node reports cluster_state:ok and each replica's link is up. */
  ready(ms?: number): Promise<void>;
  destroy(): void;
}

/**
 * A Redis Cluster of six servers (three primaries, three replicas: redis-cli
 * --cluster create), each with AOF and `appendfsync always`, on 127.0.0.1 and
 * free ports; a node that misses for a second is failed over.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(
        await startRedis({
          settings: { 'cluster-enabled': 'yes', 'cluster-node-timeout': '1000', 'cluster-config-file': 'nodes.conf' },
        }),
      );
    }
    const out = nodes[0].cli(
      '--cluster',
      'create',
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    );
    if (!/All 16384 slots covered/.test(out)) throw new Error(`redis-cli --cluster create failed: ${out.slice(-500)}`);
    const cluster: RedisCluster = {
      url: `redis+cluster://${nodes
        .slice(0, 3)
        .map((node) => `127.0.0.1:${node.port}`)
        .join(',')}`,
      nodes,
      primaryOf(slot) {
        for (const node of nodes) {
          if (node.pid() === null) continue;
          const info = node.cli('CLUSTER', 'SLOTS');
          // Lines: from, to, primary ip, primary port, id, replica…
          const lines = info.split('\n').map((line) => line.trim());
          for (let i = 0; i + 3 < lines.length; i++) {
            const from = Number(lines[i]);
            const to = Number(lines[i + 1]);
            if (/^\d+$/.test(lines[i]) && /^\d+$/.test(lines[i + 1]) && lines[i + 2] === '127.0.0.1' && slot >= from && slot <= to) {
              const port = Number(lines[i + 3]);
              const found = nodes.find((one) => one.port === port);
              if (found) return found;
            }
          }
        }
        throw new Error(`no primary found for slot ${slot}`);
      },
      async ready(ms = 30_000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const up = nodes.filter((node) => node.pid() !== null);
          const ok = up.every((node) => {
            if (!/cluster_state:ok/.test(node.cli('CLUSTER', 'INFO'))) return false;
            const replication = node.cli('INFO', 'replication');
            return !/role:slave/.test(replication) || /master_link_status:up/.test(replication);
          });
          if (ok) return;
          if (Date.now() > deadline) throw new Error(`the Redis Cluster was not ready within ${ms} ms`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      },
      destroy() {
        for (const node of nodes) node.destroy();
      },
    };
    await cluster.ready();
    return cluster;
  } catch (error) {
    for (const node of nodes) node.destroy();
    throw error;
  }
}
