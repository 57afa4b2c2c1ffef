// Small helpers shared by the test suites.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startSessionApp, StoreUnavailableError, type SessionApp, type SessionAppConfig, type SessionStore } from '../src/index.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverClock, storeLocation } from './engines.ts';
import { CLOCK, Clock } from '../src/runtime/clock.ts';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh temp directory, and a function that removes it. */
export function tempDir(prefix = 'sessions-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Waits until `predicate` holds, polling; fails after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs a script with this Node; resolves with its exit code, output and how long it ran. */
export function runScript(
  file: string,
  args: string[] = [],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; node?: string } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number; timedOut: boolean }> {
  return new Promise((resolve) => {
    const started = Date.now();
    // A .ts script on this Node needs the flags this process runs with (Node 22 strips types only when told).
    const flags =
      options.node === undefined
        ? process.execArgv.filter((flag) => flag === '--experimental-strip-types' || flag === '--no-warnings')
        : [];
    const child = spawn(options.node ?? process.execPath, [...flags, file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 20000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
}

/**
 * The lowest Node that package.json's `engines` names, installed from the npm
 * registry (the `node` package) into .tmp/ on first use: the package must
 * work on it, so the suites and the packed tarball run on it too.
 */
export function floorNode(): { version: string; path: string } {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  const match = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec(engines);
  if (!match) throw new Error(`package.json engines.node must read ">=X.Y": ${engines}`);
  const version = `${match[1]}.${match[2]}.${match[3] ?? 0}`;
  const prefix = join(root, '.tmp', `node-${version}`);
  const path = join(prefix, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(path)) {
    const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `node@${version}`], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (result.status !== 0 || !existsSync(path))
      throw new Error(`could not install Node ${version} from npm: ${result.stderr || result.error}`);
  }
  return { version, path };
}

const clocks = new WeakMap<SessionApp, Clock>();

/** startSessionApp with a clock of its own that elapse() moves on. */
export async function startClocked(config: SessionAppConfig): Promise<SessionApp> {
  const clock = new Clock();
  const app = await startSessionApp({ ...config, [CLOCK]: clock } as SessionAppConfig);
  clocks.set(app, clock);
  return app;
}

/**
 * Lets `ms` pass for an app of withApp (or the apps given `clock` in their
 * config's CLOCK slot), as its sessions age: its clock
 * (src/runtime/clock.ts) moves on at once where the engine reads the app's
 * clock (SQLite); PostgreSQL ages rows by its server's clock, so there the
 * test waits.
 */
export async function elapse(target: SessionApp | Clock, ms: number): Promise<void> {
  const clock = target instanceof Clock ? target : clocks.get(target);
  if (clock && !serverClock) clock.advance(ms);
  else await sleep(ms);
}

/**
 * An app on a fresh store (a file in a temp directory, or a fresh table on
 * the PostgreSQL test server: test/engines.ts), stopped and removed after `body`.
 */
export async function withApp(config: SessionAppConfig, body: (app: SessionApp, dir: string) => Promise<void>): Promise<void> {
  const temp = tempDir();
  const app = await startClocked({ ...(await storeLocation(temp.dir)), sweepSignal: false, ...config });
  try {
    await body(app, temp.dir);
  } finally {
    await app.stop();
    temp.remove();
  }
}

/** A store whose calls fail as an unreachable one does (get succeeds unless told otherwise). */
export function downStore(getToo = false): SessionStore {
  const down = () => Promise.reject(new StoreUnavailableError('down for the test'));
  return {
    get: getToo ? down : async () => ({ n: 1 }),
    put: down,
    patch: down,
    renew: down,
    delete: down,
    count: down,
    sessionsOf: down,
    revoke: down,
    revokeAll: down,
  } as unknown as SessionStore;
}
