// The store's engine on PostgreSQL: the same operations and replies as the
// SQLite engine, run on one pg Client owned by the store owner. Each mailbox
// batch is one pipelined BEGIN … COMMIT (group commit); replies go out only
// after COMMIT is confirmed; a lost connection replays the unanswered batch
// on a new one (every operation is idempotent: ids come from the caller).
import { hash } from 'node:crypto';
import type { QueryResult } from 'pg';
import { SessionTooLargeError, StoreUnavailableError } from '../../errors.ts';
import type { Outcome, Request } from '../../runtime/mailbox-server.ts';
import { expiresAt, type ExpiryPolicy } from '../expiry.ts';
import { handleFromDigest } from '../ids.ts';
import {
  backoffMs, closeClient, connect, isConnectionLoss, isRetryable, unavailableError, type Client,
} from './connection.ts';
import { statements, sweepStatements, type Statements } from './statements.ts';

export interface PostgresEngineOptions {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  maxSessionBytes: number;
  maxPerOwner: number | null;
  /** requestTimeout: how long a batch may keep retrying before its calls fail. */
  timeoutMs: number;
}

interface Query {
  name: string;
  text: string;
  values: unknown[];
}

/** One unit of work in a batch: the requests it answers, its statements, and how their results become the outcome. */
interface Step {
  indexes: number[];
  queries: Query[];
  finish(results: QueryResult[]): Outcome;
}

const digest = (sid: string): Buffer => hash('sha256', sid, 'buffer');

// jsonb cannot hold U+0000 (22P05): refused with a clear error before the
// batch is sent, so it cannot abort its neighbours' transaction. JSON.stringify
// writes it as \u0000; an escaped backslash before it (\\u0000) is not one.
const NUL_IN_JSON = /(?:^|[^\\])(?:\\\\)*\\u0000/;
const nulError = () => new TypeError('session data holds a NUL character (U+0000), which PostgreSQL\'s jsonb cannot store; nothing was stored');

function tooLarge(max: number): SessionTooLargeError {
  return new SessionTooLargeError(`the session is over maxSessionBytes (${max}) serialized; nothing was stored`);
}

/**
 * The PostgreSQL engine. `runBatch` never rejects for a per-request problem:
 * every outcome is a reply. It rejects only when the engine itself is unsound
 * (a bug), which crashes the actor so the supervisor restarts it.
 */
export class PostgresEngine {
  readonly #options: PostgresEngineOptions;
  readonly #sql: Statements;
  readonly #sweeps: string[];
  #client: Client | null = null;
  #closed = false;

  constructor(options: PostgresEngineOptions) {
    this.#options = options;
    this.#sql = statements(options.table, options.policy, options.maxSessionBytes);
    this.#sweeps = sweepStatements(options.table, options.policy);
  }

  /** Adopts a connection opened (and checked) by the actor's init. */
  adopt(client: Client): void {
    this.#client = client;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    await closeClient(client);
  }

  async runBatch(requests: Request[]): Promise<Outcome[]> {
    const deadline = Date.now() + this.#options.timeoutMs;
    const outcomes: Outcome[] = new Array(requests.length);
    let steps = this.#plan(requests, outcomes);
    let attempt = 0;
    while (steps.length > 0) {
      const client = await this.#connected(deadline, attempt);
      if (client instanceof Error) {
        for (const step of steps) for (const i of step.indexes) outcomes[i] = { ok: false, error: client };
        break;
      }
      const result = await this.#transaction(client, steps);
      if (result.kind === 'done') {
        const again: Step[] = [];
        for (let s = 0; s < steps.length; s++) {
          const step = steps[s];
          const outcome = step.finish(result.results[s]);
          // A merged run of patches that is too large together stored
          // nothing: each patch runs again alone, so the ones that fit are
          // kept, as they would have been one by one.
          if (!outcome.ok && step instanceof PatchStep && step.indexes.length > 1) again.push(...step.split());
          else for (const i of step.indexes) outcomes[i] = outcome;
        }
        if (again.length === 0) break;
        steps = again;
        continue;
      }
      if (result.kind === 'failed-step') {
        // One op raised (it should not: ops are written not to): it fails
        // alone, and the others run again in a new transaction.
        const bad = steps[result.step];
        for (const i of bad.indexes) outcomes[i] = { ok: false, error: opError(result.error) };
        steps = steps.filter((_, s) => s !== result.step);
        continue;
      }
      // The connection was lost (or the transaction collided): the whole
      // batch is replayed on a (new) connection, within the deadline.
      if (result.kind === 'lost') {
        this.#client = null;
        void closeClient(client);
      }
      attempt++;
      if (Date.now() + backoffMs(attempt) >= deadline) {
        const error = unavailableError(result.error, this.#options.database, 'the PostgreSQL connection was lost and not regained within requestTimeout');
        for (const step of steps) for (const i of step.indexes) outcomes[i] = { ok: false, error };
        break;
      }
      await sleep(backoffMs(attempt));
    }
    return outcomes;
  }

  /** The connection, reconnecting with backoff until the deadline; an Error once it has passed. */
  async #connected(deadline: number, attempt: number): Promise<Client | Error> {
    let lastError: unknown = null;
    for (let tries = attempt; ; tries++) {
      if (this.#client) return this.#client;
      if (this.#closed) return new StoreUnavailableError('the store owner is stopping');
      const left = deadline - Date.now();
      if (left <= 0) return unavailableError(lastError ?? new Error('no connection'), this.#options.database);
      try {
        this.#client = await connect({ database: this.#options.database, timeoutMs: Math.max(250, left), pipeline: true });
        return this.#client;
      } catch (error) {
        lastError = error;
        if (!isConnectionLoss(error)) return unavailableError(error, this.#options.database);
        const wait = backoffMs(tries);
        if (Date.now() + wait >= deadline) return unavailableError(error, this.#options.database);
        await sleep(wait);
      }
    }
  }

  /** One pipelined BEGIN … COMMIT over every step; the COMMIT's reply is checked, not assumed. */
  async #transaction(client: Client, steps: Step[]): Promise<
    | { kind: 'done'; results: QueryResult[][] }
    | { kind: 'failed-step'; step: number; error: unknown }
    | { kind: 'lost' | 'retry'; error: unknown }> {
    const begin = client.query('BEGIN');
    const sent: Array<Array<Promise<QueryResult>>> = steps.map((step) => step.queries.map((query) => client.query(query)));
    const commit = client.query('COMMIT');
    const settled = await Promise.allSettled([begin, ...sent.flat(), commit]);
    let firstError: unknown = null;
    let failedStep = -1;
    let lost: unknown = null;
    let k = 1;
    for (let s = 0; s < steps.length; s++) {
      for (let q = 0; q < steps[s].queries.length; q++, k++) {
        const one = settled[k];
        if (one.status === 'fulfilled') continue;
        if (isConnectionLoss(one.reason)) lost ??= one.reason;
        else if (firstError === null && (one.reason as { code?: string }).code !== '25P02') {
          firstError = one.reason;
          failedStep = s;
        }
      }
    }
    const beginResult = settled[0];
    const commitResult = settled[settled.length - 1];
    if (beginResult.status === 'rejected' && isConnectionLoss(beginResult.reason)) lost ??= beginResult.reason;
    if (commitResult.status === 'rejected' && isConnectionLoss(commitResult.reason)) lost ??= commitResult.reason;
    if (lost !== null) return { kind: 'lost', error: lost };
    if (firstError !== null) {
      if (isRetryable(firstError)) return { kind: 'retry', error: firstError };
      return { kind: 'failed-step', step: failedStep, error: firstError };
    }
    // A COMMIT after an error resolves as ROLLBACK without throwing (research
    // note §5): only a reply that says COMMIT acknowledges the batch.
    if (commitResult.status === 'rejected' || beginResult.status === 'rejected' || commitResult.value.command !== 'COMMIT') {
      const reason = commitResult.status === 'rejected' ? commitResult.reason
        : beginResult.status === 'rejected' ? beginResult.reason : new Error(`the transaction ended with ${commitResult.value.command}`);
      if (isRetryable(reason)) return { kind: 'retry', error: reason };
      return { kind: 'lost', error: reason };
    }
    const results: QueryResult[][] = [];
    k = 1;
    for (const step of steps) {
      const own: QueryResult[] = [];
      for (let q = 0; q < step.queries.length; q++, k++) own.push((settled[k] as PromiseFulfilledResult<QueryResult>).value);
      results.push(own);
    }
    return { kind: 'done', results };
  }

  /**
   * Turns the batch into steps, in order. Validation failures become outcomes
   * at once (never sent). Consecutive patches of one session are merged into
   * one statement — `(data - u1) || s1` then `- u2 || s2` equals
   * `data - (u1 ∪ u2) || ((s1 - u2) || s2)` — as long as no other operation
   * that could touch that session (or many sessions) comes between them.
   */
  #plan(requests: Request[], outcomes: Outcome[]): Step[] {
    const steps: Step[] = [];
    const openPatch = new Map<string, PatchStep>();
    for (let i = 0; i < requests.length; i++) {
      const { op, args: raw } = requests[i];
      const args = raw as unknown[];
      try {
        if (op === 'patch') {
          const sid = args[0] as string;
          const hasOwner = args.length > 3;
          const open = openPatch.get(sid);
          const set = args[1] as string | null;
          if (set !== null && NUL_IN_JSON.test(set)) throw nulError();
          const unset = (args[2] as string[] | null) ?? [];
          if (open && !hasOwner && !open.hasOwner) {
            open.merge(i, set, unset);
            continue;
          }
          const step = new PatchStep(this, i, sid, set, unset, hasOwner ? { owner: args[3] as string | null } : null);
          steps.push(step);
          // A patch that changes the owner may run the cap: nothing merges across it.
          if (hasOwner) openPatch.clear();
          else openPatch.set(sid, step);
          continue;
        }
        // Anything else ends the merging of its session's patches; an
        // operation on many rows (or on owners) ends every merge.
        if (SINGLE_SESSION.has(op) && !(op === 'create' && args[2] !== null) && !(op === 'put' && args.length > 2) && !(op === 'renew' && args.length > 5)) {
          openPatch.delete(args[0] as string);
          if (op === 'renew') openPatch.delete(args[1] as string);
        } else {
          openPatch.clear();
        }
        steps.push(this.#step(i, op, args));
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
    return steps;
  }

  /** @internal the statements, for PatchStep */
  get sql(): Statements { return this.#sql; }
  get options(): PostgresEngineOptions { return this.#options; }

  #capQueries(owner: string | null, sid: string): Query[] {
    if (owner === null || this.#options.maxPerOwner === null) return [];
    return [{ name: 'ss_cap', text: this.#sql.cap, values: [owner, digest(sid), this.#options.maxPerOwner - 1] }];
  }

  #checkJson(json: string): void {
    const max = this.#options.maxSessionBytes;
    if (json.length * 3 > max && Buffer.byteLength(json, 'utf8') > max) {
      throw new SessionTooLargeError(`the session is ${Buffer.byteLength(json, 'utf8')} bytes serialized, over maxSessionBytes (${max}); nothing was stored`);
    }
    if (NUL_IN_JSON.test(json)) throw nulError();
  }

  #step(i: number, op: string, args: unknown[]): Step {
    const sql = this.#sql;
    const one = (queries: Query[], finish: (results: QueryResult[]) => unknown): Step => ({
      indexes: [i], queries, finish: (results) => ({ ok: true, value: finish(results) }),
    });
    switch (op) {
      case 'get':
      case 'load': {
        const text = sql.getTouch ?? sql.get;
        return one([{ name: sql.getTouch ? 'ss_get_touch' : 'ss_get', text, values: [digest(args[0] as string)] }], ([r]) => {
          const row = r.rows[0] as { data: string; owner: string | null } | undefined;
          if (!row) return null;
          return op === 'get' ? row.data : [row.data, row.owner];
        });
      }
      case 'create': {
        const [sid, json, owner] = args as [string, string, string | null];
        this.#checkJson(json);
        return one([{ name: 'ss_create', text: sql.create, values: [digest(sid), json, owner] }, ...this.#capQueries(owner, sid)], () => sid);
      }
      case 'put': {
        const [sid, json] = args as [string, string];
        this.#checkJson(json);
        const withOwner = args.length > 2;
        const owner = withOwner ? args[2] as string | null : null;
        const queries: Query[] = withOwner
          ? [{ name: 'ss_put_owner', text: sql.putOwner, values: [digest(sid), json, owner] }, ...this.#capQueries(owner, sid)]
          : [{ name: 'ss_put', text: sql.put, values: [digest(sid), json] }];
        return one(queries, ([r]) => (r.rowCount === 1 ? sid : null));
      }
      case 'renew': {
        const [sid, next, set = null, unset = null, replace = null] = args as [string, string, (string | null)?, (string[] | null)?, (string | null)?];
        if (set !== null) this.#checkJson(set);
        if (replace !== null) this.#checkJson(replace);
        const hasOwner = args.length > 5;
        const owner = hasOwner ? args[5] as string | null : null;
        return {
          indexes: [i],
          queries: [
            { name: 'ss_renew', text: sql.renew, values: [digest(sid), digest(next), set ?? '{}', unset ?? [], replace, hasOwner, owner] },
            ...(hasOwner ? this.#capQueries(owner, next) : []),
          ],
          finish: ([r]) => {
            const row = r.rows[0] as { found: number; moved: number; replayed: boolean };
            if (row.moved === 1) return { ok: true, value: next };
            if (row.found === 1) return { ok: false, error: tooLarge(this.#options.maxSessionBytes) };
            return { ok: true, value: row.replayed ? next : null };
          },
        };
      }
      case 'delete': return one([{ name: 'ss_delete', text: sql.delete, values: [digest(args[0] as string)] }], () => null);
      case 'count': return one([{ name: 'ss_count', text: sql.count, values: [] }], ([r]) => Number((r.rows[0] as { n: number }).n));
      case 'sessionsOf': return one([{ name: 'ss_sessions_of', text: sql.sessionsOf, values: [args[0]] }], ([r]) =>
        (r.rows as Array<{ sid_hash: Buffer; data: string; created_at: number; touched_at: number }>).map((row) =>
          [handleFromDigest(row.sid_hash), row.created_at, row.touched_at, expiresAt(this.#options.policy, row), row.data]));
      case 'revoke': return one([{ name: 'ss_revoke', text: sql.revoke, values: [Buffer.from(args[1] as Uint8Array), args[0]] }],
        ([r]) => (r.rows as Array<{ live: boolean }>).some((row) => row.live));
      case 'revokeAll': return one([{ name: 'ss_revoke_all', text: sql.revokeAll, values: [args[0], args[1] === null ? null : digest(args[1] as string)] }],
        ([r]) => (r.rows as Array<{ live: boolean }>).filter((row) => row.live).length);
      case 'upsert': {
        const [key, json] = args as [string, string];
        this.#checkJson(json);
        return one([{ name: 'ss_upsert', text: sql.upsert, values: [digest(key), json] }], ([r]) => (r.rows[0] as { ok: boolean }).ok);
      }
      case 'clear': return one([{ name: 'ss_clear', text: sql.clear, values: [] }], () => null);
      case 'all': return one([{ name: 'ss_all', text: sql.all, values: [] }], ([r]) => (r.rows as Array<{ data: string }>).map((row) => row.data));
      case 'sweep': {
        const limit = args[0] as number;
        return one(this.#sweeps.map((text, n) => ({ name: `ss_sweep_${n}`, text, values: [limit] })),
          (results) => results.reduce((sum, r) => sum + (r.rowCount ?? 0), 0));
      }
      default: throw new TypeError(`unknown store operation "${op}"`);
    }
  }
}

/** Operations keyed by one session id (args[0]): they end only that session's merges. */
const SINGLE_SESSION = new Set(['get', 'load', 'create', 'put', 'renew', 'delete', 'upsert']);

/** One or more consecutive patches of one session, as one statement. */
class PatchStep implements Step {
  readonly indexes: number[];
  readonly #engine: PostgresEngine;
  readonly #sid: string;
  /** The set as sent, until a merge needs it parsed. */
  #setJson: string | null;
  #set: Record<string, unknown> | null = null;
  #unset: Set<string>;
  /** Each merged patch as it came: [request index, set JSON, unset]. */
  readonly #parts: Array<[number, string | null, string[]]>;
  readonly #owner: { owner: string | null } | null;

  get hasOwner(): boolean { return this.#owner !== null; }

  constructor(engine: PostgresEngine, index: number, sid: string, set: string | null, unset: string[], owner: { owner: string | null } | null) {
    this.#engine = engine;
    this.indexes = [index];
    this.#sid = sid;
    this.#setJson = set;
    this.#parts = [[index, set, unset]];
    // A key with U+0000 cannot be in a jsonb object: removing it is a no-op,
    // and PostgreSQL's text[] could not carry it.
    this.#unset = new Set(unset.filter((key) => !key.includes('\0')));
    this.#owner = owner;
  }

  /** The patches merged into this one, each as a step of its own again. */
  split(): PatchStep[] {
    return this.#parts.map(([index, set, unset]) => new PatchStep(this.#engine, index, this.#sid, set, unset, this.#owner));
  }

  merge(index: number, setJson: string | null, unset: string[]): void {
    this.#parts.push([index, setJson, unset]);
    this.indexes.push(index);
    if (this.#setJson !== null) {
      this.#set = JSON.parse(this.#setJson) as Record<string, unknown>;
      this.#setJson = null;
    }
    const set = setJson === null ? null : JSON.parse(setJson) as Record<string, unknown>;
    for (const key of unset) {
      if (key.includes('\0')) continue;
      this.#unset.add(key);
      if (this.#set && Object.hasOwn(this.#set, key)) delete this.#set[key];
    }
    if (set) {
      this.#set ??= {};
      for (const key of Object.keys(set)) {
        // defineProperty: a key named "__proto__" stays data.
        Object.defineProperty(this.#set, key, { value: set[key], enumerable: true, writable: true, configurable: true });
      }
    }
  }

  get queries(): Query[] {
    const sql = this.#engine.sql;
    const options = this.#engine.options;
    const set = this.#setJson ?? (this.#set === null ? '{}' : JSON.stringify(this.#set));
    const values: unknown[] = [digest(this.#sid), set, [...this.#unset]];
    if (this.#owner === null) return [{ name: 'ss_patch', text: sql.patch, values }];
    values.push(this.#owner.owner);
    const queries: Query[] = [{ name: 'ss_patch_owner', text: sql.patchOwner, values }];
    if (this.#owner.owner !== null && options.maxPerOwner !== null) {
      queries.push({ name: 'ss_cap', text: sql.cap, values: [this.#owner.owner, digest(this.#sid), options.maxPerOwner - 1] });
    }
    return queries;
  }

  finish([r]: QueryResult[]): Outcome {
    const row = r.rows[0] as { found: number; stored: number };
    if (row.found === 0) return { ok: true, value: false };
    if (row.stored === 0) return { ok: false, error: tooLarge(this.#engine.options.maxSessionBytes) };
    return { ok: true, value: true };
  }
}

function opError(error: unknown): Error {
  const code = (error as { code?: string } | null)?.code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  // Class 22 is data_exception: what was sent cannot be stored.
  if (code.startsWith('22')) return new TypeError(`PostgreSQL refused the data (${code}): ${message}; nothing was stored`);
  return new StoreUnavailableError(`the store could not run the operation (${code || 'error'}): ${message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
