// What an engine is to the rest of the package: the one seam every database
// goes through (docs/architecture.md, "How to add an engine"). An engine's
// descriptor is light — loading it loads no database client; its store's
// worker, its sweeper and its admin are loaded only when an app uses it.
import type { ResolvedConfig } from '../config.ts';
import type { ExpiryPolicy } from '../store/expiry.ts';
import type { WireError } from '../errors.ts';

/** Where a store lives: the `database` value and the table. */
export interface Location {
  database: string;
  table: string;
}

/** The settings the admin calls and the command line work with. */
export interface AdminSettings extends Location {
  policy: ExpiryPolicy;
  maxSessionBytes: number;
}

/** One session as `sessions` lists it. */
export interface SessionRow {
  handle: string;
  createdAt: number;
  touchedAt: number;
  expiresAt: number;
}

/** What setup, clear and drop found: a missing database (a SQLite file that does not exist) or table is nothing to do. */
export type Absent = 'no-database' | 'no-table';

/**
 * An engine's administration, on the caller's thread and a short-lived
 * connection of its own (never the store's actor's): the public
 * setupStore/clearStore/dropStore and every command of the CLI.
 */
export interface EngineAdmin {
  /** 'missing': created; 'old': an earlier layout upgraded in place; 'ok': nothing to do. */
  setup(at: Location): Promise<'missing' | 'old' | 'ok'>;
  /** Deletes every session; given a policy to count them by, says how many rows there were (else `deleted` is null). */
  clear(at: Location, count: ExpiryPolicy | null): Promise<{ deleted: number | null } | Absent>;
  drop(at: Location): Promise<'dropped' | Absent>;
  /** Live and dead sessions, and the bytes the store takes. Refuses a missing table. */
  stats(at: AdminSettings): Promise<{ live: number; dead: number; bytes: number }>;
  sessions(at: AdminSettings, owner: string): Promise<SessionRow[]>;
  /** Ends the owner's sessions (one, by its handle, or all); resolves with how many were live. */
  revoke(at: AdminSettings, owner: string, handle: string | undefined): Promise<number>;
  /** The cleaner's sweep, run once; `skipped` when another process is sweeping this table. */
  sweep(at: AdminSettings): Promise<{ deleted: number; skipped: boolean }>;
}

/** What the cleaner's thread runs a sweep with (a module exporting these; see sweeper.ts in each engine). */
export interface SweepTask extends Location {
  policy: ExpiryPolicy;
  busyTimeoutMs: number;
  /** Int32Array over a SharedArrayBuffer: slot 0 set to 1 asks the sweep to stop between batches. */
  abort: SharedArrayBuffer;
  /** What the engine shares between its two actors (AppShared.cleaner). */
  shared: Record<string, unknown>;
}

export interface SweepResult {
  deleted: number;
  skipped: boolean;
  /** The live count after a sweep that ran to its end, or null. */
  live: number | null;
  /**
   * A failed sweep, as data: errors cross piscina's port as plain Errors, so
   * an engine whose errors carry a code sends them this way (errors.ts).
   */
  error?: WireError;
}

export interface Sweeper {
  /** Opens the connection and checks the table: a cleaner that cannot sweep fails its start. */
  ready(task: Omit<SweepTask, 'abort' | 'policy'>): Promise<void>;
  sweep(task: SweepTask): Promise<SweepResult>;
  /** Periodic housekeeping between sweeps (SQLite's WAL checkpoint), when the engine needs any. */
  housekeep?(task: Omit<SweepTask, 'abort' | 'policy'>): void;
  close(): Promise<void>;
}

/**
 * State one app shares between its engine's two actors, across every
 * incarnation of both (SQLite's write gate): handed to the store's worker and
 * to the cleaner, and told when a thread died so that it can release what
 * that thread held.
 */
export interface AppShared {
  store: Record<string, unknown>;
  cleaner: Record<string, unknown>;
  died(child: 'store' | 'cleaner'): void;
}

export interface Engine {
  /** The engine's name, as the contract suites and docs/architecture.md list it. */
  readonly name: string;
  /** How a user writes this engine's `database` value, for the config error that lists them all. */
  readonly form: string;
  /** Whether `database` selects this engine. The registry asks each engine in turn; the last one takes the rest. */
  recognizes(database: string): boolean;
  /** Why this `database` value cannot be used, or null. Runs before any worker starts. */
  problem(database: string): string | null;
  /** Why `durability` other than 'normal' does not apply, or null when the engine honours it. */
  readonly durabilityRefusal: string | null;
  /** The value as it may be printed: no password in it. */
  redact(database: string): string;
  /** `text` with every secret of `database` masked (an error message from the client, say). */
  redactIn(text: string, database: string): string;
  /** The store's actor: a worker module that serves the mailbox (runtime/mailbox-server.ts). */
  readonly storeWorker: URL;
  /** The cleaner's module for this engine (a Sweeper), loaded in the cleaner's thread. */
  readonly sweeper: URL;
  /** Whether the sweeper does housekeeping between sweeps (SQLite's WAL checkpoints), once a second. */
  readonly housekeeping: boolean;
  /**
   * Whether the cleaner opens a connection of its own to `database`; when
   * not (SQLite's ':memory:', which lives inside one connection), the store's
   * actor sweeps, one bounded batch per mailbox call.
   */
  cleanerConnects(database: string): boolean;
  /**
   * How the store's client picks the id a renew moves a session to: 'fresh'
   * (the default), or 'same-group' — an id whose digest starts with the old
   * one's first byte (a Redis Cluster: the renew's two keys then share a slot).
   */
  renewedIds?(database: string): 'fresh' | 'same-group';
  /** What the app shares between both actors for as long as it runs. */
  share(config: ResolvedConfig): AppShared;
  /** The engine's administration, loaded on first use. */
  admin(): Promise<EngineAdmin>;
}

/** Resolves to .ts under src/ and to .js under dist/. */
export const moduleUrl = (relative: string, base: string): URL => new URL(`${relative}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
