// The store's engine on PostgreSQL: the same operations and replies as the
// SQLite engine, run on one pg Client owned by the store actor. Each mailbox
// batch is one pipelined BEGIN … COMMIT (group commit); replies go out only
// after COMMIT is confirmed; a lost connection replays the unanswered batch
// on a new one (every operation is idempotent: ids come from the caller).
import type { QueryResult } from 'pg';
import { SessionTooLargeError, StoreUnavailableError } from '../../errors.ts';
import type { Outcome, Request } from '../../runtime/mailbox-server.ts';
import { expiresAt, type ExpiryPolicy } from '../../store/expiry.ts';
import { digest, handleFromDigest } from '../../store/ids.ts';
import { randomUUID } from 'node:crypto';
import {
  backoffMs,
  closeClient,
  connect,
  idleInTransactionTimeoutMs,
  isConnectionLoss,
  isRetryable,
  statementTimeoutMs,
  targetsOf,
  unavailableError,
  type Client,
} from './connection.ts';
import { MARKS_KEPT_MS, marksTable } from './schema.ts';
import { quoted } from '../../store/layout.ts';
import { afterLostReply, dropInTransaction, loseCommitReply } from '../../store/fault-hook.ts';
import { NOW, statements, sweepStatements, waveStatements, type Statements, type WaveStatements } from './statements.ts';
import { RENEWED } from '../../store/renewed.ts';
import { ownerGiven, type Op, type RenewWithChanges, type StoreCall } from '../../store/protocol.ts';

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

/**
 * One unit of work in a batch: the requests it answers, its statements, and
 * how their results become outcomes.
 */
interface Step {
  indexes: number[];
  readonly queries: Query[];
  finish(results: QueryResult[], outcomes: Outcome[]): void;
}

// jsonb cannot hold U+0000 (22P05): refused with a clear error before the
// batch is sent, so it cannot abort its neighbours' transaction. JSON.stringify
// writes it as \u0000; an escaped backslash before it (\\u0000) is not one.
const NUL_IN_JSON = /(?:^|[^\\])(?:\\\\)*\\u0000/;
const nulError = () =>
  new TypeError("session data holds a NUL character (U+0000), which PostgreSQL's jsonb cannot store; nothing was stored");

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
  readonly #wave: WaveStatements;
  #client: Client | null = null;
  #closed = false;
  /** BEGIN, and behind PgBouncer the server-side bounds a startup packet cannot carry there (connection.ts). */
  readonly #begin: string;
  readonly #markSql: string;
  readonly #hasMarkSql: string;
  /** target_session_attrs asks for a writable server: read batches check it too. */
  readonly #checkWritable: boolean;
  /** ?maxConnectionLifetime: after a failback, the fleet drifts back to the first host. */
  readonly #maxLifetimeMs: number | null;
  #openedAt = 0;

  constructor(options: PostgresEngineOptions) {
    this.#options = options;
    const targets = targetsOf(options.database);
    this.#begin = targets.pgbouncer
      ? `BEGIN; SET LOCAL statement_timeout = ${statementTimeoutMs(options.timeoutMs)}; SET LOCAL idle_in_transaction_session_timeout = ${idleInTransactionTimeoutMs(options.timeoutMs)}`
      : 'BEGIN';
    this.#checkWritable = targets.attrs !== 'any';
    this.#maxLifetimeMs = targets.maxLifetimeMs;
    // `at`: when the mark may be forgotten (server clock): past any replay of
    // its batch (within requestTimeout), with margin for a new primary's clock.
    this.#markSql = `INSERT INTO ${quoted(marksTable(options.table))} (id, at) VALUES ($1, ${NOW} + ${MARKS_KEPT_MS + 2 * Math.ceil(options.timeoutMs)})`;
    this.#hasMarkSql = `SELECT EXISTS (SELECT 1 FROM ${quoted(marksTable(options.table))} WHERE id = $1) AS there`;
    this.#sql = statements(options.table, options.policy, options.maxSessionBytes);
    this.#sweeps = sweepStatements(options.table, options.policy);
    this.#wave = waveStatements(options.table, options.policy, options.maxSessionBytes);
  }

  /** Touches owed by reads (their sliding timestamp is older than touchAfter). */
  #touches: Buffer[] = [];

  /** @internal a read found this session's touch due (WaveStep) */
  owe(hash: Buffer): void {
    this.#touches.push(hash);
  }

  /**
   * After a batch's replies went out: the touches its reads owe, in one
   * statement. A read is not a write: the reply never waits for its touch.
   * Best effort, as on SQLite: a touch that fails (the connection just died)
   * only lets that session expire as if it had not been read, which the
   * throttle already allows for.
   */
  async afterReplies(): Promise<void> {
    if (this.#touches.length === 0 || !this.#client) return;
    const hashes = this.#touches;
    this.#touches = [];
    await this.#client.query({ name: 'ss_w_touch', text: this.#wave.touch, values: [hashes] }).catch(() => {});
  }

  /** Adopts a connection opened (and checked) by the actor's init. */
  adopt(client: Client): void {
    this.#client = client;
    this.#openedAt = Date.now();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    await closeClient(client);
  }

  async runBatch(requests: Request[]): Promise<Outcome[]> {
    if (this.#client && this.#maxLifetimeMs !== null && Date.now() - this.#openedAt > this.#maxLifetimeMs) {
      // Between batches: nothing of ours is in flight on it but a best-effort touch.
      void closeClient(this.#client);
      this.#client = null;
    }
    const deadline = Date.now() + this.#options.timeoutMs;
    const outcomes: Outcome[] = new Array(requests.length);
    const writes = requests.some(({ op }) => !READ_ONLY.has(op));
    const owners = ownersOf(requests);
    let merge = true;
    let steps = this.#plan(requests, outcomes, merge);
    let attempt = 0;
    /**
     * The batch's mark (schema.ts, marksTable): every run of a write batch
     * inserts it first. Once one run has committed, a later run's insert
     * fails on the primary key (23505), so a batch whose COMMIT reply was
     * lost is never applied twice; a run still in progress on the server
     * (its connection half-dead) makes the insert wait until it ends. A
     * failover carries the mark to the new primary exactly when it carries
     * the batch.
     */
    const mark = writes ? randomUUID() : null;
    /**
     * The batch's first run is known to have committed: every later run only
     * computes its replies (and is rolled back), even when that run's own
     * connection is lost too — its rolled-back transaction says nothing.
     */
    let committed = false;
    /** Why the last run was lost: named in the error should the deadline pass. */
    let lastLoss: unknown = null;
    while (steps.length > 0) {
      if (Date.now() >= deadline) {
        // Whatever kept this batch going (failing statements run again one
        // by one), it never outlives what its callers wait.
        const error =
          lastLoss === null
            ? new StoreUnavailableError(`the store could not complete the batch within requestTimeout (${this.#options.timeoutMs} ms)`)
            : unavailableError(
                lastLoss,
                this.#options.database,
                'the PostgreSQL connection was lost and not regained within requestTimeout',
              );
        failAll(steps, outcomes, error);
        break;
      }
      const client = await this.#connected(deadline, attempt);
      if (client instanceof Error) {
        failAll(steps, outcomes, client);
        break;
      }
      /** The batch already committed: its replies are computed again in a transaction that is rolled back. */
      const answerOnly: boolean = committed;
      const result = await this.#transaction(client, steps, mark, owners, answerOnly, writes && !answerOnly && dropInTransaction(requests));
      if (result.kind === 'done' && writes && loseCommitReply(requests)) {
        // Fault injection (fault-hook.ts): committed (or, for a run that only
        // computes replies, rolled back), and the reply "lost".
        this.#client = null;
        void closeClient(client);
        attempt++;
        await afterLostReply();
        continue;
      }
      if (result.kind === 'committed-before') {
        // An earlier run of this batch committed (its reply was lost): this
        // run rolled back, and the next only computes the replies.
        committed = true;
        continue;
      }
      if (result.kind === 'mark-missing') {
        // An answer-only run found no mark on this server: the committed run
        // was on a server this one never heard from (a failover to an
        // asynchronous standby). Nothing of the batch is here: replayed.
        committed = false;
        continue;
      }
      if (result.kind === 'broken' || result.kind === 'unconfirmed') {
        failAll(steps, outcomes, result.error);
        break;
      }
      if (result.kind === 'done') {
        for (let s = 0; s < steps.length; s++) steps[s].finish(result.results[s], outcomes);
        break;
      }
      if (result.kind === 'unmerge') {
        // A merged run of patches would not give what running them one by
        // one gives (one of them does not fit): the transaction rolled back,
        // and the batch runs again with every patch on its own.
        merge = false;
        for (const step of steps) for (const i of step.indexes) outcomes[i] = undefined as unknown as Outcome;
        steps = this.#plan(requests, outcomes, merge);
        continue;
      }
      if (result.kind === 'failed-step') {
        // One op raised (it should not: ops are written not to): it fails
        // alone, and the others run again in a new transaction. A wave is
        // taken apart first, so only its bad call fails.
        const bad = steps[result.step];
        if (bad instanceof WaveStep) {
          steps = [...steps.slice(0, result.step), ...bad.singles(), ...steps.slice(result.step + 1)];
          continue;
        }
        for (const i of bad.indexes) outcomes[i] = { ok: false, error: opError(result.error) };
        steps = steps.filter((_, s) => s !== result.step);
        continue;
      }
      // The connection was lost (or the transaction collided): the whole
      // batch is replayed on a (new) connection, within the deadline.
      if (result.kind === 'lost') {
        lastLoss = result.error;
        this.#client = null;
        if (!result.abandoned) void closeClient(client);
      }
      attempt++;
      // Retried until requestTimeout has passed, the last wait cut short to
      // fit: a call fails only once its time is up (a failover that takes
      // nearly requestTimeout still succeeds).
      const wait = Math.min(backoffMs(attempt), deadline - Date.now() - 25);
      if (wait < 0) {
        const error = unavailableError(
          result.error,
          this.#options.database,
          result.kind === 'lost'
            ? 'the PostgreSQL connection was lost and not regained within requestTimeout'
            : (result.error as { code?: string }).code === '57014'
              ? 'a batch whose connection was lost may still have been running on the server after requestTimeout; it was not run again'
              : 'the batch collided with other transactions (a deadlock, or an owner whose sessions another app server was changing) until requestTimeout',
        );
        failAll(steps, outcomes, error);
        break;
      }
      await sleep(wait);
    }
    return outcomes;
  }

  /** The connection, reconnecting with backoff until the deadline; an Error once it has passed. */
  async #connected(deadline: number, attempt: number): Promise<Client | Error> {
    let lastError: unknown = null;
    for (let tries = attempt; ; tries++) {
      if (this.#client) return this.#client;
      if (this.#closed) return new StoreUnavailableError('the store actor is stopping');
      const left = deadline - Date.now();
      if (left <= 0) return unavailableError(lastError ?? new Error('no connection'), this.#options.database);
      try {
        const client = await connect({
          database: this.#options.database,
          timeoutMs: this.#options.timeoutMs,
          connectTimeoutMs: Math.max(250, left),
          pipeline: true,
        });
        if (this.#closed) {
          // stop() ran while this connection was being opened: it is not ours to keep.
          void closeClient(client);
          return new StoreUnavailableError('the store actor is stopping');
        }
        this.#client = client;
        this.#openedAt = Date.now();
        return client;
      } catch (error) {
        lastError = error;
        if (!isConnectionLoss(error)) return unavailableError(error, this.#options.database);
        const wait = Math.min(backoffMs(tries), deadline - Date.now() - 25);
        if (wait < 0) return unavailableError(error, this.#options.database);
        await sleep(wait);
      }
    }
  }

  /** One pipelined BEGIN … COMMIT over every step; the COMMIT's reply is checked, not assumed. */
  async #transaction(
    client: Client,
    steps: Step[],
    mark: string | null,
    owners: string[],
    rollback = false,
    dropInside = false,
  ): Promise<
    | { kind: 'done'; results: QueryResult[][] }
    | { kind: 'failed-step'; step: number; error: unknown }
    | { kind: 'unmerge'; error: unknown }
    | { kind: 'lost'; error: unknown; abandoned?: boolean }
    | { kind: 'retry'; error: unknown }
    | { kind: 'committed-before' }
    | { kind: 'mark-missing' }
    | { kind: 'broken'; error: Error }
    | { kind: 'unconfirmed'; error: Error }
  > {
    // pg writes each protocol message as it is made: corked, the whole
    // pipelined batch leaves in one write (one syscall instead of dozens).
    const stream = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
    stream?.cork?.();
    let begin: Promise<QueryResult>;
    let marked: Promise<QueryResult> | null = null;
    let readOnly: Promise<QueryResult> | null = null;
    let locks: Promise<QueryResult> | null = null;
    let sent: Array<Array<Promise<QueryResult>>>;
    let commit: Promise<QueryResult>;
    /**
     * An answer-only run (its batch committed in an earlier run) computes its
     * replies inside a savepoint it rolls back, then COMMITs a transaction
     * that holds only a transaction id: with synchronous replication that
     * COMMIT waits until a standby has everything up to it — the earlier
     * run's commit included — so no reply acknowledges a batch only the
     * primary holds (the earlier run's wait may have ended early: its
     * connection terminated, the server restarted).
     */
    const confirming = rollback && mark !== null;
    let answerHeads: Array<Promise<QueryResult>> = [];
    let undo: Promise<QueryResult> | null = null;
    try {
      begin = client.query(this.#begin);
      // A write batch inserts its mark first (runBatch): should the COMMIT's
      // reply be lost, the next run learns from it whether this one committed.
      // On a read-only server it fails at once (25006), a lost connection.
      // An answer-only run checks that the mark is on this server.
      if (mark !== null && !rollback) marked = client.query({ name: 'ss_mark', text: this.#markSql, values: [mark] });
      else if (mark !== null) {
        marked = client.query({ name: 'ss_has_mark', text: this.#hasMarkSql, values: [mark] });
        answerHeads = [client.query('SELECT pg_current_xact_id()'), client.query('SAVEPOINT ss_answer')];
      }
      // A read-only batch cannot tell a read-only server by failing: it asks.
      else if (this.#checkWritable) readOnly = client.query({ name: 'ss_ro', text: READ_ONLY_SQL, values: [] });
      // The locks of every owner the batch changes, before any row lock and
      // in one global order (statements.ts, lockOwners): owner operations
      // are exact across app servers, and two batches cannot deadlock on them.
      if (owners.length > 0) locks = client.query({ name: 'ss_lock_owners', text: this.#sql.lockOwners, values: [owners] });
      sent = steps.map((step) => step.queries.map((query) => client.query(query)));
      if (confirming) undo = client.query('ROLLBACK TO SAVEPOINT ss_answer');
      commit = client.query(rollback && !confirming ? 'ROLLBACK' : 'COMMIT');
    } finally {
      stream?.uncork?.();
    }
    const checked = marked ?? readOnly;
    const heads = [begin, ...(checked ? [checked] : []), ...answerHeads, ...(locks ? [locks] : [])];
    // A COMMIT whose wait for a synchronous standby was cancelled (an
    // operator's pg_cancel_backend; statement_timeout does not cover that
    // wait) still answers COMMIT, with a warning: committed on the primary
    // alone, so not acknowledged.
    let syncCancelled = false;
    const onNotice = (notice: { message?: string }) => {
      if (/synchronous replication/i.test(String(notice.message))) syncCancelled = true;
    };
    client.on('notice', onNotice);
    const tail = undo ? [undo] : [];
    const all = Promise.allSettled([...heads, ...sent.flat(), ...tail, commit]).finally(() => client.off('notice', onNotice));
    if (dropInside && marked) {
      // Fault injection (fault-hook.ts): the connection is "lost" once the
      // transaction has inserted its mark, while the server is still inside
      // it. The socket is only half-closed, so the server finishes the batch
      // (and commits it) unaware; the client is closed once it has.
      await marked.catch(() => null);
      (stream as { end?(): void } | undefined)?.end?.();
      this.#client = null;
      void all.then(() => closeClient(client));
      return { kind: 'lost', error: new Error('the connection was dropped inside the transaction (fault hook)'), abandoned: true };
    }
    const settled = await all;
    const head = heads.length;
    const checkResult = checked ? settled[1] : null;
    const locksResult = locks ? settled[head - 1] : null;
    if (checkResult?.status === 'rejected') {
      const code = (checkResult.reason as { code?: string }).code;
      if (isConnectionLoss(checkResult.reason)) return { kind: 'lost', error: checkResult.reason };
      if (marked && code === '23505' && !rollback) return { kind: 'committed-before' };
      // 57014: its earlier run still holds the mark (it is still running on
      // the server) past statement_timeout; a lock wait or a collision: run again.
      if (marked && (code === '57014' || code === '55P03' || isRetryable(checkResult.reason)))
        return { kind: 'retry', error: checkResult.reason };
      // Waiting will not help (the marks table missing, no privilege on it): said at once.
      if (marked) {
        const reason = checkResult.reason as Error;
        return {
          kind: 'broken',
          error: unavailableError(
            code === '42P01'
              ? new Error(`the batch marks table "${marksTable(this.#options.table)}" is missing; run \`supervised-sessions setup\``)
              : reason,
            this.#options.database,
            'the batch mark could not be written',
          ),
        };
      }
    } else if (marked && rollback && checkResult?.status === 'fulfilled' && !(checkResult.value.rows[0] as { there: boolean }).there) {
      return { kind: 'mark-missing' };
    } else if (readOnly && checkResult?.status === 'fulfilled' && (checkResult.value.rows[0] as { ro: boolean }).ro) {
      return { kind: 'lost', error: readOnlyError() };
    }
    let firstError: unknown = null;
    let failedStep = -1;
    let lost: unknown = null;
    let k = head;
    for (let s = 0; s < steps.length; s++) {
      for (let q = 0; q < sent[s].length; q++, k++) {
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
    // The answer-only run's own statements (an id, the savepoint and its
    // rollback): failing, the server is not one to confirm on (a standby).
    for (const one of [
      ...settled.slice(checked ? 2 : 1, (checked ? 2 : 1) + answerHeads.length),
      ...(undo ? [settled[settled.length - 2]] : []),
    ])
      if (one.status === 'rejected') lost ??= one.reason;
    if (beginResult.status === 'rejected' && isConnectionLoss(beginResult.reason)) lost ??= beginResult.reason;
    if (commitResult.status === 'rejected' && isConnectionLoss(commitResult.reason)) lost ??= commitResult.reason;
    if (locksResult?.status === 'rejected' && isConnectionLoss(locksResult.reason)) lost ??= locksResult.reason;
    if (lost !== null) return { kind: 'lost', error: lost };
    // Waiting for an owner's lock failed (a deadlock with a batch that took
    // row locks first, detected by the server): the batch runs again.
    if (locksResult?.status === 'rejected') return { kind: 'retry', error: locksResult.reason };
    if (firstError !== null) {
      if (isRetryable(firstError)) return { kind: 'retry', error: firstError };
      // The merged-patch check (statements.ts, waveStatements) divides by zero on purpose.
      if ((firstError as { code?: string }).code === '22012' && steps[failedStep] instanceof WaveStep)
        return { kind: 'unmerge', error: firstError };
      return { kind: 'failed-step', step: failedStep, error: firstError };
    }
    // A COMMIT after an error resolves as ROLLBACK without throwing (research
    // note §5): only a reply that says COMMIT acknowledges the batch.
    if (
      commitResult.status === 'rejected' ||
      beginResult.status === 'rejected' ||
      commitResult.value.command !== (rollback && !confirming ? 'ROLLBACK' : 'COMMIT')
    ) {
      const reason =
        commitResult.status === 'rejected'
          ? commitResult.reason
          : beginResult.status === 'rejected'
            ? beginResult.reason
            : new Error(`the transaction ended with ${commitResult.value.command}`);
      if (isRetryable(reason)) return { kind: 'retry', error: reason };
      return { kind: 'lost', error: reason };
    }
    if (syncCancelled)
      return {
        kind: 'unconfirmed',
        error: new StoreUnavailableError(
          'the batch committed on the primary, but no synchronous standby confirmed it (its wait was cancelled); it is not acknowledged',
        ),
      };
    const results: QueryResult[][] = [];
    k = head;
    for (let s = 0; s < steps.length; s++) {
      const own: QueryResult[] = [];
      for (let q = 0; q < sent[s].length; q++, k++) own.push((settled[k] as PromiseFulfilledResult<QueryResult>).value);
      results.push(own);
    }
    return { kind: 'done', results };
  }

  /**
   * Turns the batch into steps, in order. Validation failures become outcomes
   * at once (never sent).
   *
   * - **Waves.** Consecutive get/load/create/put/patch/delete calls on
   *   distinct sessions form a wave, run as one set-based statement per kind
   *   (`= ANY($1)`, `unnest(...)`): a batch of 64 requests is a handful of
   *   statements, not 64. Calls on distinct rows commute, so the order of the
   *   kinds inside a wave does not matter; a second call on a session already
   *   in the wave starts the next wave, so calls on one session keep their
   *   order. Anything else (renew, owners, counts, calls that apply the owner
   *   cap) runs alone, between waves.
   * - **Merged patches.** Consecutive patches of one session become one —
   *   `(data - u1) || s1` then `- u2 || s2` equals
   *   `data - (u1 ∪ u2) || ((s1 - u2) || s2)` — as long as no other call on
   *   that session, and no call on many sessions, comes between them.
   */
  #plan(requests: Request[], outcomes: Outcome[], merge: boolean): Step[] {
    const steps: Step[] = [];
    let wave: WaveStep | null = null;
    const openPatch = new Map<string, PatchStep>();
    const closeWave = () => {
      if (wave) steps.push(wave);
      wave = null;
    };
    for (let i = 0; i < requests.length; i++) {
      // The mailbox carries the store protocol's calls (store/protocol.ts).
      const call = requests[i] as StoreCall;
      try {
        const key = isWaveable(call) ? call.args[0] : null;
        if (call.op === 'patch') {
          const args = call.args;
          const set = args[1];
          if (set !== null && NUL_IN_JSON.test(set)) throw nulError();
          const unset = args[2] ?? [];
          const open = key === null || !merge ? undefined : openPatch.get(key);
          if (open) {
            open.merge(i, set, unset);
            continue;
          }
          const step = new PatchStep(this, i, args[0], set, unset, key === null ? extrasOf(args[3], args[4]) : null);
          if (key === null) {
            // A patch that changes the owner may run the cap: alone, and nothing merges across it.
            closeWave();
            openPatch.clear();
            steps.push(step);
          } else {
            if (wave === null || (wave as WaveStep).has(key)) {
              closeWave();
              wave = new WaveStep(this);
            }
            (wave as WaveStep).addPatch(key, step);
            openPatch.set(key, step);
          }
          continue;
        }
        if (key !== null) {
          if (call.op === 'create' || call.op === 'put') this.#checkJson(call.args[1]);
          if (wave === null || (wave as WaveStep).has(key)) {
            closeWave();
            wave = new WaveStep(this);
          }
          (wave as WaveStep).add(i, call, key);
          openPatch.delete(key);
          continue;
        }
        // Alone, between waves; nothing merges across it.
        const step = this.#step(i, call);
        closeWave();
        openPatch.clear();
        steps.push(step);
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
    closeWave();
    return steps;
  }

  /** @internal the statements, for PatchStep and WaveStep */
  get sql(): Statements {
    return this.#sql;
  }
  get wave(): WaveStatements {
    return this.#wave;
  }
  get options(): PostgresEngineOptions {
    return this.#options;
  }

  #capQueries(owner: string | null, sid: string): Query[] {
    if (owner === null || this.#options.maxPerOwner === null) return [];
    return [{ name: 'ss_cap', text: this.#sql.cap, values: [owner, digest(sid), this.#options.maxPerOwner - 1] }];
  }

  #checkJson(json: string): void {
    const max = this.#options.maxSessionBytes;
    if (json.length * 3 > max && Buffer.byteLength(json, 'utf8') > max) {
      throw new SessionTooLargeError(
        `the session is ${Buffer.byteLength(json, 'utf8')} bytes serialized, over maxSessionBytes (${max}); nothing was stored`,
      );
    }
    if (NUL_IN_JSON.test(json)) throw nulError();
  }

  /** @internal a call as a step of its own (WaveStep.singles) */
  stepFor(i: number, call: StoreCall): Step {
    return this.#step(i, call);
  }

  #step(i: number, call: StoreCall): Step {
    const sql = this.#sql;
    const one = (queries: Query[], finish: (results: QueryResult[]) => unknown): Step => ({
      indexes: [i],
      queries,
      finish: (results, outcomes) => {
        outcomes[i] = { ok: true, value: finish(results) };
      },
    });
    switch (call.op) {
      case 'get':
      case 'load': {
        const op = call.op;
        // A still load (the touch option) reads without the touch.
        const touch = call.op === 'load' && call.args[1] === true ? null : sql.getTouch;
        const text = touch ?? sql.get;
        return one([{ name: touch ? 'ss_get_touch' : 'ss_get', text, values: [digest(call.args[0])] }], ([r]) => {
          const row = r.rows[0] as
            | { data: string; owner: string | null; max_age: number | null; renewed: boolean; touched: boolean }
            | undefined;
          if (!row) return null;
          if (row.renewed) return op === 'get' ? null : RENEWED;
          return op === 'get' ? row.data : [row.data, row.owner, row.touched, row.max_age];
        });
      }
      case 'alive':
        return one([{ name: 'ss_alive', text: sql.alive, values: [digest(call.args[0])] }], ([r]) => {
          const row = r.rows[0] as { renewed: boolean } | undefined;
          return row === undefined ? false : row.renewed ? RENEWED : true;
        });
      case 'create': {
        const [sid, json, owner, maxAge = null] = call.args;
        this.#checkJson(json);
        return one(
          [{ name: 'ss_create', text: sql.create, values: [digest(sid), json, owner, maxAge] }, ...this.#capQueries(owner, sid)],
          () => sid,
        );
      }
      case 'put': {
        const [sid, json, owner, maxAge] = call.args;
        this.#checkJson(json);
        const extras = extrasOf(owner, maxAge);
        const queries: Query[] =
          extras !== null
            ? [
                { name: 'ss_put_with', text: sql.putWith, values: [digest(sid), json, ...extrasValues(extras)] },
                ...(extras.owner !== undefined ? this.#capQueries(extras.owner, sid) : []),
              ]
            : [{ name: 'ss_put', text: sql.put, values: [digest(sid), json] }];
        return one(queries, ([r]) => {
          const row = r.rows[0] as { stored: number; renewed: boolean };
          return row.stored === 1 ? sid : row.renewed ? RENEWED : null;
        });
      }
      case 'renew': {
        const [sid, next, set = null, unset = null, replace = null, newOwner, maxAge] = call.args as Partial<RenewWithChanges> &
          [string, string];
        // (A renew without changes is [sid, next]: the rest reads as absent.)
        if (set !== null) this.#checkJson(set);
        if (replace !== null) this.#checkJson(replace);
        const hasOwner = newOwner !== undefined;
        const owner = hasOwner ? newOwner : null;
        const hasMaxAge = maxAge !== undefined;
        // The new owner's lock is the batch's (taken first, ownersOf); the
        // session's current owner's is tried by the statement itself.
        return {
          indexes: [i],
          queries: [
            // (Keys with U+0000 cannot be in jsonb, nor in a text[]: removing them is a no-op.)
            {
              name: 'ss_renew',
              text: sql.renew,
              values: [
                digest(sid),
                digest(next),
                set ?? '{}',
                (unset ?? []).filter((key) => !key.includes('\0')),
                replace,
                hasOwner,
                owner,
                hasMaxAge,
                hasMaxAge ? maxAge : null,
              ],
            },
            ...(hasOwner ? this.#capQueries(owner, next) : []),
          ],
          finish: ([r], outcomes) => {
            const row = r.rows[0] as { found: number; moved: number; replayed: boolean; renewed: boolean };
            outcomes[i] =
              row.moved === 1
                ? { ok: true, value: next }
                : row.found === 1
                  ? { ok: false, error: tooLarge(this.#options.maxSessionBytes) }
                  : { ok: true, value: row.replayed ? next : row.renewed ? RENEWED : null };
          },
        };
      }
      case 'delete':
        return one([{ name: 'ss_delete', text: sql.delete, values: [digest(call.args[0])] }], ([r]) =>
          (r.rows[0] as { renewed: boolean }).renewed ? RENEWED : null,
        );
      case 'count':
        return one([{ name: 'ss_count', text: sql.count, values: [] }], ([r]) => Number((r.rows[0] as { n: number }).n));
      case 'sessionsOf':
        return one([{ name: 'ss_sessions_of', text: sql.sessionsOf, values: [call.args[0]] }], ([r]) =>
          (r.rows as Array<{ sid_hash: Buffer; data: string; created_at: number; touched_at: number; max_age: number | null }>).map(
            (row) => [handleFromDigest(row.sid_hash), row.created_at, row.touched_at, expiresAt(this.#options.policy, row), row.data],
          ),
        );
      // Under the owner's lock (the batch's, ownersOf): a renew or a login of
      // that owner on another app server either committed before (its new id
      // is seen) or waits.
      case 'revoke':
        return one([{ name: 'ss_revoke', text: sql.revoke, values: [Buffer.from(call.args[1]), call.args[0]] }], ([r]) =>
          (r.rows as Array<{ live: boolean }>).some((row) => row.live),
        );
      case 'revokeAll': {
        const [owner, except, guarded = false] = call.args;
        if (guarded) {
          return one(
            [{ name: 'ss_revoke_others', text: sql.revokeOthers, values: [owner, except === null ? null : digest(except)] }],
            ([r]) => {
              const { kept, n } = r.rows[0] as { kept: boolean; n: number };
              return kept ? n : null;
            },
          );
        }
        return one(
          [{ name: 'ss_revoke_all', text: sql.revokeAll, values: [owner, except === null ? null : digest(except)] }],
          ([r]) => (r.rows as Array<{ live: boolean }>).filter((row) => row.live).length,
        );
      }
      case 'upsert': {
        const [key, json, remaining = null] = call.args;
        this.#checkJson(json);
        return one(
          [{ name: 'ss_upsert', text: sql.upsert, values: [digest(key), json, remaining] }],
          ([r]) => (r.rows[0] as { ok: boolean }).ok,
        );
      }
      case 'touchKey':
        return one(
          [{ name: 'ss_touch_key', text: sql.touchKey, values: [digest(call.args[0]), call.args[1], call.args[2] ?? null] }],
          ([r]) => (r.rows[0] as { found: boolean }).found,
        );
      case 'clear':
        return one([{ name: 'ss_clear', text: sql.clear, values: [] }], () => null);
      case 'all':
        return one([{ name: 'ss_all', text: sql.all, values: [] }], ([r]) => (r.rows as Array<{ data: string }>).map((row) => row.data));
      case 'sweep': {
        const limit = call.args[0];
        return one(
          this.#sweeps.map((text, n) => ({ name: `ss_sweep_${n}`, text, values: [limit] })),
          (results) => results.reduce((sum, r) => sum + (r.rowCount ?? 0), 0),
        );
      }
      default:
        throw new TypeError(`unknown store operation "${(call as { op: unknown }).op}"`);
    }
  }
}

/** The owners a batch's calls give sessions to or revoke from, sorted (the batch takes their locks first). */
function ownersOf(requests: Request[]): string[] {
  const owners = new Set<string>();
  for (const request of requests) {
    const call = request as StoreCall;
    const owner = call.op === 'revoke' || call.op === 'revokeAll' ? call.args[0] : ownerGiven(call);
    if (owner !== undefined) owners.add(owner);
  }
  return [...owners].sort();
}

/** A call's owner and own-lifetime changes (undefined: unchanged); null when it makes neither. */
interface Extras {
  owner?: string | null;
  maxAge?: number | null;
}

function extrasOf(owner: unknown, maxAge: unknown): Extras | null {
  if (owner === undefined && maxAge === undefined) return null;
  return {
    ...(owner !== undefined ? { owner: owner as string | null } : {}),
    ...(maxAge !== undefined ? { maxAge: maxAge as number | null } : {}),
  };
}

/** The four parameters of putWith/patchWith: whether and which owner, whether and which lifetime. */
function extrasValues(extras: Extras): unknown[] {
  return [extras.owner !== undefined, extras.owner ?? null, extras.maxAge !== undefined, extras.maxAge ?? null];
}

/** Calls that write nothing (their touches come after the replies). */
const READ_ONLY = new Set<string>(['get', 'load', 'alive', 'count', 'sessionsOf', 'all'] satisfies Op[]);

/** The calls a wave can carry: on one session (args[0]), without the owner cap. */
function isWaveable(call: StoreCall): call is Extract<StoreCall, { op: 'get' | 'load' | 'create' | 'put' | 'patch' | 'delete' }> {
  switch (call.op) {
    case 'create':
      return call.args[2] === null && (call.args[3] ?? null) === null;
    case 'put':
      return call.args.length === 2;
    case 'patch':
      return call.args.length === 3;
    case 'get':
    case 'load':
    case 'delete':
      return true;
    default:
      return false;
  }
}

/** A key for a digest in a Map. */
const keyOf = (hash: Buffer) => hash.toString('latin1');

/**
 * A wave: calls on distinct sessions, one set-based statement per kind. The
 * statements hand PostgreSQL their rows in digest order, which makes two app
 * servers' waves lock shared rows in the same order as far as the plans
 * follow it; should they deadlock anyway (40P01), one batch rolls back and
 * runs again.
 */
class WaveStep implements Step {
  readonly #own: Array<{ index: number; call: StoreCall }> = [];
  readonly #engine: PostgresEngine;
  readonly #keys = new Set<string>();
  readonly #reads: Array<{ index: number; op: string; hash: Buffer; still: boolean }> = [];
  readonly #creates: Array<{ index: number; sid: string; hash: Buffer; json: string }> = [];
  readonly #puts: Array<{ index: number; sid: string; hash: Buffer; json: string }> = [];
  readonly #patches: Array<{ hash: Buffer; step: PatchStep }> = [];
  readonly #deletes: Array<{ index: number; hash: Buffer }> = [];
  /** Which result belongs to which kind, in the order the statements were sent. */
  #sent: Array<'reads' | 'creates' | 'puts' | 'patches' | 'deletes'> = [];

  constructor(engine: PostgresEngine) {
    this.#engine = engine;
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Every request it answers, the merged patches' included. */
  get indexes(): number[] {
    return [...this.#own.map((call) => call.index), ...this.#patches.flatMap((p) => p.step.indexes)];
  }

  /** Its calls as steps of their own: should a wave's statement raise, each call runs alone and only the bad one fails. */
  singles(): Step[] {
    return [...this.#own.map(({ index, call }) => this.#engine.stepFor(index, call)), ...this.#patches.flatMap((p) => p.step.split())];
  }

  add(index: number, call: StoreCall, key: string): void {
    this.#keys.add(key);
    this.#own.push({ index, call });
    const hash = digest(key);
    if (call.op === 'get' || call.op === 'load')
      this.#reads.push({ index, op: call.op, hash, still: call.op === 'load' && call.args[1] === true });
    else if (call.op === 'create') this.#creates.push({ index, sid: key, hash, json: call.args[1] });
    else if (call.op === 'put') this.#puts.push({ index, sid: key, hash, json: call.args[1] });
    else this.#deletes.push({ index, hash });
  }

  addPatch(key: string, step: PatchStep): void {
    this.#keys.add(key);
    this.#patches.push({ hash: digest(key), step });
    // A patch's indexes grow as patches merge into it: read them at the end.
  }

  get queries(): Query[] {
    const sql = this.#engine.wave;
    const queries: Query[] = [];
    this.#sent = [];
    if (this.#reads.length) {
      queries.push({ name: 'ss_w_get', text: sql.get, values: [this.#reads.map((r) => r.hash)] });
      this.#sent.push('reads');
    }
    if (this.#creates.length) {
      queries.push({ name: 'ss_w_create', text: sql.create, values: [this.#creates.map((c) => c.hash), this.#creates.map((c) => c.json)] });
      this.#sent.push('creates');
    }
    if (this.#puts.length) {
      queries.push({ name: 'ss_w_put', text: sql.put, values: [this.#puts.map((p) => p.hash), this.#puts.map((p) => p.json)] });
      this.#sent.push('puts');
    }
    if (this.#patches.length) {
      const rows = this.#patches.map((p) => p.step.row);
      queries.push({
        name: 'ss_w_patch',
        text: sql.patch,
        values: [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
      });
      this.#sent.push('patches');
    }
    if (this.#deletes.length) {
      queries.push({ name: 'ss_w_delete', text: sql.delete, values: [this.#deletes.map((d) => d.hash)] });
      this.#sent.push('deletes');
    }
    return queries;
  }

  finish(results: QueryResult[], outcomes: Outcome[]): void {
    this.#sent.forEach((kind, n) => {
      // A row whose `renewed` is true, or whose `stored` is null, is a renewed id's tombstone.
      const rows = results[n].rows as Array<{
        sid_hash: Buffer;
        data?: string;
        owner?: string | null;
        max_age?: number | null;
        stored?: boolean | null;
        stale?: boolean;
        renewed?: boolean;
      }>;
      const byKey = new Map(rows.map((row) => [keyOf(row.sid_hash), row]));
      if (kind === 'reads') {
        for (const { index, op, hash, still } of this.#reads) {
          const row = byKey.get(keyOf(hash));
          const stale = row?.stale === true && !still;
          const value =
            row === undefined
              ? null
              : row.renewed
                ? op === 'get'
                  ? null
                  : RENEWED
                : op === 'get'
                  ? row.data
                  : [row.data, row.owner, stale, row.max_age ?? null];
          outcomes[index] = { ok: true, value };
          if (stale) this.#engine.owe(hash);
        }
      } else if (kind === 'creates') {
        for (const { index, sid } of this.#creates) outcomes[index] = { ok: true, value: sid };
      } else if (kind === 'puts') {
        for (const { index, sid, hash } of this.#puts) {
          const row = byKey.get(keyOf(hash));
          outcomes[index] = { ok: true, value: row === undefined ? null : row.stored === null ? RENEWED : sid };
        }
      } else if (kind === 'patches') {
        for (const { hash, step } of this.#patches) {
          const row = byKey.get(keyOf(hash));
          if (row !== undefined && row.stored === null) step.renewed(outcomes);
          else step.settle(row !== undefined, row?.stored === true, outcomes);
        }
      } else {
        for (const { index, hash } of this.#deletes) outcomes[index] = { ok: true, value: byKey.has(keyOf(hash)) ? RENEWED : null };
      }
    });
  }
}

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
  /** The merged patch after each of its parts: [set JSON, unset keys]; the last is the whole. */
  readonly #prefixes: Array<[string, string[]]>;
  /** The owner and own-lifetime changes of a patch that runs alone (never merged). */
  readonly #extras: Extras | null;

  constructor(engine: PostgresEngine, index: number, sid: string, set: string | null, unset: string[], extras: Extras | null) {
    this.#engine = engine;
    this.indexes = [index];
    this.#sid = sid;
    this.#setJson = set;
    this.#parts = [[index, set, unset]];
    // A key with U+0000 cannot be in a jsonb object: removing it is a no-op,
    // and PostgreSQL's text[] could not carry it.
    this.#unset = new Set(unset.filter((key) => !key.includes('\0')));
    this.#extras = extras;
    this.#prefixes = [[set ?? '{}', [...this.#unset]]];
  }

  /** The patches merged into this one, each as a step of its own again. */
  split(): PatchStep[] {
    return this.#parts.map(([index, set, unset]) => new PatchStep(this.#engine, index, this.#sid, set, unset, this.#extras));
  }

  merge(index: number, setJson: string | null, unset: string[]): void {
    this.#parts.push([index, setJson, unset]);
    this.indexes.push(index);
    if (this.#setJson !== null) {
      this.#set = JSON.parse(this.#setJson) as Record<string, unknown>;
      this.#setJson = null;
    }
    const set = setJson === null ? null : (JSON.parse(setJson) as Record<string, unknown>);
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
    this.#prefixes.push([this.#set === null ? '{}' : JSON.stringify(this.#set), [...this.#unset]]);
  }

  get queries(): Query[] {
    const sql = this.#engine.sql;
    const options = this.#engine.options;
    const set = this.#setJson ?? (this.#set === null ? '{}' : JSON.stringify(this.#set));
    const values: unknown[] = [digest(this.#sid), set, [...this.#unset]];
    const extras = this.#extras;
    if (extras === null) return [{ name: 'ss_patch', text: sql.patch, values }];
    values.push(...extrasValues(extras));
    const queries: Query[] = [{ name: 'ss_patch_with', text: sql.patchWith, values }];
    if (typeof extras.owner === 'string' && options.maxPerOwner !== null) {
      queries.push({ name: 'ss_cap', text: sql.cap, values: [extras.owner, digest(this.#sid), options.maxPerOwner - 1] });
    }
    return queries;
  }

  finish(results: QueryResult[], outcomes: Outcome[]): void {
    const row = results[0].rows[0] as { found: number; stored: number; renewed: boolean };
    if (row.found === 0 && row.renewed) this.renewed(outcomes);
    else this.settle(row.found === 1, row.stored === 1, outcomes);
  }

  /** The session's id was renewed by another request: RENEWED for every part. */
  renewed(outcomes: Outcome[]): void {
    for (const i of this.indexes) outcomes[i] = { ok: true, value: RENEWED };
  }

  /**
   * Its outcome, once the statement that ran it said whether the session was
   * found and the change stored. A merged patch is stored whole or, when any
   * of its prefixes would not fit, not run at all (the batch runs again
   * unmerged: engine.ts, 'unmerge'), so one outcome holds for all its parts.
   */
  settle(found: boolean, stored: boolean, outcomes: Outcome[]): void {
    const outcome: Outcome = !found
      ? { ok: true, value: false }
      : !stored
        ? { ok: false, error: tooLarge(this.#engine.options.maxSessionBytes) }
        : { ok: true, value: true };
    for (const i of this.indexes) outcomes[i] = outcome;
  }

  /**
   * The wave statement's row for this patch: [digest, set JSON, unset keys as
   * a JSON array, and for a merged patch every prefix as a JSON array of
   * [set, unset] pairs (null for a single patch)]. Merging is exact only when
   * no prefix is too large: run one by one, each part would then have been
   * stored, in order.
   */
  get row(): [Buffer, string, string, string | null] {
    const checks =
      this.#parts.length === 1 ? null : `[${this.#prefixes.map(([set, unset]) => `[${set},${JSON.stringify(unset)}]`).join(',')}]`;
    return [
      digest(this.#sid),
      this.#setJson ?? (this.#set === null ? '{}' : JSON.stringify(this.#set)),
      JSON.stringify([...this.#unset]),
      checks,
    ];
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

/** Every call the steps answer fails with `error` (the batch gives up). */
function failAll(steps: Step[], outcomes: Outcome[], error: Error): void {
  for (const step of steps) for (const i of step.indexes) outcomes[i] = { ok: false, error };
}

/** The Error for a server found read-only by a read batch (counted as a lost connection). */
function readOnlyError(): Error {
  return Object.assign(new Error('the server is now read-only (a standby, or a demoted primary): another host is tried'), {
    code: '25006',
  });
}

const READ_ONLY_SQL = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS ro";
