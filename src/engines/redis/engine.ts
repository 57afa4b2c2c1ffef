// The store's engine on Redis: the same operations and replies as the other
// engines, each run by the store's script (script.ts), so each is atomic on
// the server and judged by its clock. A mailbox batch is one EVALSHA (one
// command, one round trip); a batch whose connection was lost is sent again
// within requestTimeout, and a batch with writes that did run gets the
// replies it stored instead of running twice.
import { createHash, randomBytes } from 'node:crypto';
import { SessionTooLargeError, StoreUnavailableError } from '../../errors.ts';
import type { Outcome, Request } from '../../runtime/mailbox-server.ts';
import type { ExpiryPolicy } from '../../store/expiry.ts';
import { digest } from '../../store/ids.ts';
import { RENEWED } from '../../store/renewed.ts';
import type { RenewWithChanges, StoreCall } from '../../store/protocol.ts';
import { backoffMs, isConnectionLoss, type Client } from './connection.ts';
import { keys, storeScript } from './script.ts';
import { afterLostReply, loseCommitReply } from '../../store/fault-hook.ts';

export interface RedisEngineOptions {
  database: string;
  table: string;
  policy: ExpiryPolicy;
  maxSessionBytes: number;
  maxPerOwner: number | null;
  /** requestTimeout: how long a call may keep retrying before it fails. */
  timeoutMs: number;
  /** ?waitReplicas=N: a write batch is acknowledged once N replicas confirm it. */
  waitReplicas: number;
  /** How long a dead session's key outlives its expiry (script.ts). */
  lingerMs: number;
  /** Opens a new connection (to replace one that left calls unanswered). */
  reconnect?: () => Promise<Client>;
}

type Reply = string | number | null | Reply[];

/** One call of a batch as sent: its keys and arguments, and how its reply becomes an outcome. */
interface Call {
  keys: string[];
  args: string[];
  finish(reply: Reply): unknown;
}

const member = (sid: string) => digest(sid).toString('base64url');

/** Session data as the script's fields: '.' + each top-level key as JSON, and its value as JSON. */
export function fieldsOf(json: string): string[] {
  const data: unknown = JSON.parse(json);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new TypeError('session data must be a JSON object');
  const flat: string[] = [];
  for (const key of Object.keys(data)) {
    const value = JSON.stringify((data as Record<string, unknown>)[key]);
    // JSON.stringify leaves out undefined and functions, as it does in the whole object.
    if (value === undefined) continue;
    flat.push(`.${JSON.stringify(key)}`, value);
  }
  return flat;
}

/** The data JSON from flat fields (the script's reply), starting at `from`. */
export function jsonOf(flat: Reply[], from: number): string {
  let out = '{';
  for (let i = from; i < flat.length; i += 2) {
    if (i > from) out += ',';
    out += `${(flat[i] as string).slice(1)}:${flat[i + 1] as string}`;
  }
  return `${out}}`;
}

const ownerSpec = (owner: string | null | undefined) => (owner === undefined ? 'u' : owner === null ? 'n' : `s${owner}`);
const lifetimeSpec = (ms: number | null | undefined) => (ms === undefined ? 'u' : ms === null ? 'n' : String(ms));
const remainingSpec = (ms: number | null) => (ms === null ? 'n' : String(Math.round(ms)));

/** The script's "renewed / gone / too large" verdicts. */
const GONE = 0;
const DONE = 1;
const WAS_RENEWED = 2;
const TOO_LARGE = 3;

/** The calls that write: a batch holding one carries a reply key (script.ts) and is followed by WAIT when asked. */
const WRITE_OPS: ReadonlySet<string> = new Set(['create', 'put', 'patch', 'renew', 'delete', 'revoke', 'revokeAll', 'upsert', 'touchKey']);

/** A call still unanswered when the batch's deadline came: the connection may be stuck (a silent partition). */
class Late extends Error {
  /** Whether the command was out long enough to suspect the connection (not just a retry sent near the deadline). */
  readonly stuck: boolean;
  constructor(stuck: boolean) {
    super('late');
    this.stuck = stuck;
  }
}

export class RedisEngine {
  readonly #options: RedisEngineOptions;
  readonly #keys: ReturnType<typeof keys>;
  readonly #script: string;
  readonly #sha: string;
  #client: Client | null = null;
  #replacing = false;
  #closed = false;
  /** Batch ids: unique to this incarnation, the same for every sending of one batch. */
  readonly #idPrefix = randomBytes(9).toString('base64url');
  #nextId = 0;

  constructor(options: RedisEngineOptions) {
    this.#options = options;
    this.#keys = keys(options.table);
    this.#script = storeScript(options.table, options.policy, {
      maxBytes: options.maxSessionBytes,
      maxPerOwner: options.maxPerOwner,
      lingerMs: options.lingerMs,
      // Every sending of a call happens within requestTimeout of the first.
      replyTtlMs: 2 * options.timeoutMs + 5000,
    });
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
  }

  adopt(client: Client): void {
    this.#client = client;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    if (client) client.destroy();
  }

  /**
   * A connection that left calls unanswered past requestTimeout may be stuck
   * (a network that drops packets without a reset: no error ever comes): it
   * is replaced by a new one, opened in the background; calls meanwhile wait.
   */
  #replace(): void {
    if (this.#replacing || this.#closed || !this.#options.reconnect) return;
    this.#replacing = true;
    const old = this.#client;
    this.#client = null;
    old?.destroy();
    void (async () => {
      for (let attempt = 0; !this.#closed; attempt++) {
        try {
          const client = await this.#options.reconnect!();
          if (this.#closed) client.destroy();
          else this.#client = client;
          break;
        } catch {
          await sleep(backoffMs(attempt));
        }
      }
      this.#replacing = false;
    })();
  }

  #tooLarge(bytes: number): SessionTooLargeError {
    return new SessionTooLargeError(
      `the session is ${bytes} bytes serialized, over maxSessionBytes (${this.#options.maxSessionBytes}); nothing was stored`,
    );
  }

  #checkSize(json: string): void {
    if (json.length * 3 <= this.#options.maxSessionBytes) return;
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.#options.maxSessionBytes) throw this.#tooLarge(bytes);
  }

  /** Runs the batch; never rejects for a per-call problem (each outcome is a reply). */
  async runBatch(requests: Request[]): Promise<Outcome[]> {
    const deadline = Date.now() + this.#options.timeoutMs;
    const outcomes: Outcome[] = new Array(requests.length);
    let pending: Array<{ index: number; call: Call }> = [];
    const scans: Array<{ index: number; call: StoreCall }> = [];
    let writes = false;
    for (let i = 0; i < requests.length; i++) {
      const call = requests[i] as StoreCall;
      try {
        if (call.op === 'count' || call.op === 'all' || call.op === 'clear') {
          scans.push({ index: i, call });
          if (call.op === 'clear') writes = true;
          continue;
        }
        if (WRITE_OPS.has(call.op)) writes = true;
        pending.push({ index: i, call: this.#plan(call) });
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
    // The key of this batch's replies: the same for every sending of it (script.ts, 'batch!').
    const newReplyKey = () => (writes ? this.#keys.reply(`${this.#idPrefix}.${(this.#nextId++).toString(36)}`) : null);
    let replyKey = newReplyKey();
    let attempt = 0;
    let faulted = false;
    while (pending.length > 0) {
      if (this.#closed || Date.now() >= deadline) {
        const error = this.#timedOut();
        for (const { index } of pending) outcomes[index] = { ok: false, error };
        break;
      }
      const client = this.#client;
      if (client === null) {
        // Reconnecting (#replace): the calls wait, within requestTimeout.
        await sleep(Math.min(backoffMs(attempt++), Math.max(1, deadline - Date.now())));
        continue;
      }
      const settled = await this.#send(client, pending, deadline, replyKey);
      if (writes && !faulted && loseCommitReply(requests)) {
        // Fault injection (fault-hook.ts): the batch ran, and its replies are "lost": every call is sent again.
        faulted = true;
        await afterLostReply();
        continue;
      }
      const again: typeof pending = [];
      let late = false;
      for (let k = 0; k < pending.length; k++) {
        const { index, call } = pending[k];
        const result = settled[k];
        if (result.status === 'fulfilled') {
          try {
            outcomes[index] = { ok: true, value: call.finish(result.value) };
          } catch (error) {
            outcomes[index] = { ok: false, error };
          }
        } else if (result.reason instanceof Late) {
          if (result.reason.stuck) late = true;
          outcomes[index] = { ok: false, error: this.#timedOut() };
        } else if (isConnectionLoss(result.reason)) {
          again.push(pending[k]);
        } else if (/^(OOM|MISCONF)\b/.test(String((result.reason as Error)?.message))) {
          // Out of memory (noeviction) or unable to persist: the store cannot write now, a 503.
          outcomes[index] = {
            ok: false,
            error: new StoreUnavailableError(`the Redis server refused the write: ${(result.reason as Error).message}`),
          };
        } else {
          outcomes[index] = { ok: false, error: result.reason };
        }
      }
      if (late) this.#replace();
      // Some calls of the batch answered and others are to be sent again (a
      // server that became read-only failed only the writes): the replies
      // stored for the whole batch, if any, are not theirs.
      if (again.length !== pending.length) replyKey = newReplyKey();
      pending = again;
      if (pending.length > 0) await sleep(Math.min(backoffMs(attempt++), Math.max(1, deadline - Date.now())));
    }
    for (const { index, call } of scans) {
      try {
        outcomes[index] = { ok: true, value: await this.#scan(call, deadline) };
      } catch (error) {
        outcomes[index] = { ok: false, error: isConnectionLoss(error) || error instanceof Late ? this.#timedOut() : error };
      }
    }
    if (writes && this.#options.waitReplicas > 0) await this.#waitReplicas(requests, outcomes, deadline);
    return outcomes;
  }

  #timedOut(): StoreUnavailableError {
    return new StoreUnavailableError(`the Redis server did not answer within requestTimeout (${this.#options.timeoutMs} ms)`);
  }

  /**
   * The calls in one script call (one command, one round trip: the script's
   * 'batch'), each run alone under pcall; NOSCRIPT (a restarted or new
   * server) loads the script and sends it again. A batch unanswered at the
   * deadline is Late; a lost connection rejects every call of it.
   */
  async #send(
    client: Client,
    calls: Array<{ call: Call }>,
    deadline: number,
    replyKey: string | null,
  ): Promise<PromiseSettledResult<Reply>[]> {
    const keyList: string[] = [];
    const counts: string[] = [];
    const args: string[] = [];
    for (const { call } of calls) {
      keyList.push(...call.keys);
      args.push(...call.args);
      counts.push(String(call.keys.length), String(call.args.length));
    }
    if (replyKey !== null) keyList.push(replyKey);
    const command = [
      'EVALSHA',
      this.#sha,
      String(keyList.length),
      ...keyList,
      replyKey === null ? 'batch' : 'batch!',
      String(calls.length),
      ...counts,
      ...args,
    ];
    let timer: NodeJS.Timeout | undefined;
    let isLate = false;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(
        () => {
          isLate = true;
          resolve('late');
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    const all = (result: PromiseSettledResult<Reply>): PromiseSettledResult<Reply>[] => calls.map(() => result);
    const sentAt = Date.now();
    // Out for at least this long past the deadline: the connection is suspect.
    const stuck = () => Date.now() - sentAt >= Math.min(this.#options.timeoutMs / 2, 1000);
    try {
      let reply: Reply | 'late';
      try {
        reply = await Promise.race([client.sendCommand(command) as Promise<Reply>, late]);
      } catch (error) {
        if (!/^NOSCRIPT/.test(String((error as Error)?.message))) throw error;
        await Promise.race([client.sendCommand(['SCRIPT', 'LOAD', this.#script]), late]);
        // Never sent once its callers were told it failed.
        if (isLate) return all({ status: 'rejected', reason: new Late(stuck()) });
        reply = await Promise.race([client.sendCommand(command) as Promise<Reply>, late]);
      }
      if (reply === 'late') return all({ status: 'rejected', reason: new Late(stuck()) });
      return (reply as Reply[]).map((one): PromiseSettledResult<Reply> => {
        if (Array.isArray(one) && one[0] === '!ERR') return { status: 'rejected', reason: new Error(String(one[1])) };
        return { status: 'fulfilled', value: one };
      });
    } catch (error) {
      return all({ status: 'rejected', reason: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * WAIT N: a write batch is acknowledged only once N replicas have it; else
   * its writes fail (never a 2xx a failover could undo). WAIT counts the
   * writes of this connection, and a call sent again after a lost
   * connection may have written nothing on the new one (its reply came from
   * the reply key): one write on this connection first makes WAIT cover
   * everything the server had by then.
   */
  async #waitReplicas(requests: Request[], outcomes: Outcome[], deadline: number): Promise<void> {
    const wanted = this.#options.waitReplicas;
    let reached = 0;
    try {
      const client = this.#client;
      if (!client) throw this.#timedOut();
      // Within what the caller waits, with room for the reply to reach it (its own timer runs from before the batch).
      const ms = Math.max(1, Math.floor((deadline - Date.now()) * 0.8));
      const [, waited] = await Promise.all([
        client.sendCommand(['SET', this.#keys.wait, '1', 'PX', '1000']),
        client.sendCommand(['WAIT', String(wanted), String(ms)]),
      ]);
      reached = Number(waited);
    } catch {
      reached = 0;
    }
    if (reached >= wanted) return;
    const error = new StoreUnavailableError(
      `the write reached ${reached} of the ${wanted} replicas waitReplicas asks for within requestTimeout (${this.#options.timeoutMs} ms); it may not survive a failover`,
    );
    for (let i = 0; i < requests.length; i++) {
      if (outcomes[i]?.ok && (WRITE_OPS.has(requests[i].op) || requests[i].op === 'clear')) outcomes[i] = { ok: false, error };
    }
  }

  #plan(call: StoreCall): Call {
    const k = this.#keys;
    switch (call.op) {
      case 'get':
      case 'load': {
        const op = call.op;
        return {
          keys: [k.session(member(call.args[0]))],
          args: ['load'],
          finish: (reply) => {
            const r = reply as Reply[];
            if (r[0] === GONE) return null;
            if (r[0] === WAS_RENEWED) return op === 'get' ? null : RENEWED;
            const data = jsonOf(r, 4);
            if (op === 'get') return data;
            const own = Number(r[3]);
            return [data, r[2] === '' ? null : (r[2] as string), r[1] === 1, own < 0 ? null : own];
          },
        };
      }
      case 'alive':
        return {
          keys: [k.session(member(call.args[0]))],
          args: ['alive'],
          finish: (reply) => ((reply as Reply[])[0] === WAS_RENEWED ? RENEWED : (reply as Reply[])[0] === DONE),
        };
      case 'create': {
        const [sid, json, owner, maxAge] = call.args;
        this.#checkSize(json);
        const fields = fieldsOf(json);
        return {
          keys: [k.session(member(sid))],
          args: ['create', ownerSpec(owner), lifetimeSpec(maxAge ?? null), String(fields.length / 2), ...fields],
          finish: () => sid,
        };
      }
      case 'put': {
        const [sid, json, owner, maxAge] = call.args;
        this.#checkSize(json);
        const fields = fieldsOf(json);
        return {
          keys: [k.session(member(sid))],
          args: ['put', ownerSpec(owner), lifetimeSpec(maxAge), String(fields.length / 2), ...fields],
          finish: (reply) => this.#verdict(reply, sid, null),
        };
      }
      case 'patch': {
        const [sid, set, unset, owner, maxAge] = call.args;
        const fields = set === null ? [] : fieldsOf(set);
        const gone = (unset ?? []).map((name) => `.${JSON.stringify(name)}`);
        return {
          keys: [k.session(member(sid))],
          args: ['patch', ownerSpec(owner), lifetimeSpec(maxAge), String(fields.length / 2), ...fields, String(gone.length), ...gone],
          finish: (reply) => this.#verdict(reply, true, false),
        };
      }
      case 'renew': {
        const [sid, next] = call.args;
        const changes = call.args.length > 2 ? (call.args as RenewWithChanges) : null;
        const args = ['renew', member(next)];
        if (changes === null) args.push('u', 'u', '-', '0', '0');
        else {
          const [, , set, unset, replace, owner, maxAge] = changes;
          args.push(ownerSpec(owner), lifetimeSpec(maxAge));
          if (replace !== null) {
            this.#checkSize(replace);
            const fields = fieldsOf(replace);
            args.push('r', String(fields.length / 2), ...fields);
          } else args.push('-');
          const fields = set === null ? [] : fieldsOf(set);
          const gone = (unset ?? []).map((name) => `.${JSON.stringify(name)}`);
          args.push(String(fields.length / 2), ...fields, String(gone.length), ...gone);
        }
        return {
          keys: [k.session(member(sid)), k.session(member(next))],
          args,
          finish: (reply) => this.#verdict(reply, next, null),
        };
      }
      case 'delete':
        return {
          keys: [k.session(member(call.args[0]))],
          args: ['delete'],
          finish: (reply) => ((reply as Reply[])[0] === WAS_RENEWED ? RENEWED : null),
        };
      case 'sessionsOf':
        return {
          keys: [k.owner(call.args[0])],
          args: ['sessionsOf', call.args[0]],
          finish: (reply) =>
            (reply as Reply[][])
              .map((row) => [`h${row[0] as string}`, Number(row[1]), Number(row[2]), Number(row[3]), jsonOf(row, 4)] as const)
              .sort((a, b) => b[2] - a[2]),
        };
      case 'revoke':
        return {
          keys: [k.owner(call.args[0])],
          args: ['revoke', call.args[0], Buffer.from(call.args[1]).toString('base64url')],
          finish: (reply) => reply === 1,
        };
      case 'revokeAll': {
        const [owner, except, guarded = false] = call.args;
        return {
          keys: [k.owner(owner)],
          args: ['revokeAll', owner, except === null ? '' : member(except), guarded ? '1' : '0'],
          finish: (reply) => (Number(reply) < 0 ? null : Number(reply)),
        };
      }
      case 'upsert': {
        const [key, json, remaining] = call.args;
        this.#checkSize(json);
        const fields = fieldsOf(json);
        return {
          keys: [k.session(member(key))],
          args: ['upsert', remainingSpec(remaining), String(fields.length / 2), ...fields],
          finish: () => null,
        };
      }
      case 'touchKey': {
        const [key, remaining, cookie] = call.args;
        return {
          keys: [k.session(member(key))],
          args: ['touchKey', remainingSpec(remaining), cookie ?? ''],
          finish: () => null,
        };
      }
      case 'sweep':
        // Redis expires sessions by itself; the cleaner prunes the owners' indexes.
        return { keys: [], args: ['age'], finish: () => 0 };
      default:
        throw new TypeError(`unknown store operation "${(call as { op: unknown }).op}"`);
    }
  }

  /** A write's reply: done (`done`), gone (`gone`), renewed, or too large. */
  #verdict(reply: Reply, done: unknown, gone: unknown): unknown {
    const r = reply as Reply[];
    if (r[0] === DONE) return done;
    if (r[0] === WAS_RENEWED) return RENEWED;
    if (r[0] === TOO_LARGE) throw this.#tooLarge(Number(r[1]));
    return gone;
  }

  /**
   * count, all, clear: SCAN every key of the store, page by page (each page
   * judged by the script), started again from the first page after a lost
   * connection, within requestTimeout. SCAN may return a key twice: each is
   * counted once.
   */
  async #scan(call: StoreCall, deadline: number): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const client = this.#client;
      try {
        if (!client) throw new Late(false);
        return await this.#scanOnce(client, call, deadline);
      } catch (error) {
        if (!(isConnectionLoss(error) || error instanceof Late) || Date.now() + backoffMs(attempt) >= deadline) throw error;
        await sleep(backoffMs(attempt));
      }
    }
  }

  async #scanOnce(client: Client, call: StoreCall, deadline: number): Promise<unknown> {
    if (call.op === 'clear') {
      for (const pattern of [this.#keys.sessions, this.#keys.owners]) {
        await eachPage(client, pattern, async (page) => {
          await client.sendCommand(['UNLINK', ...page]);
        });
      }
      return null;
    }
    const seen = new Set<string>();
    let count = 0;
    const all: string[] = [];
    await eachPage(client, this.#keys.sessions, async (found) => {
      if (Date.now() >= deadline) throw this.#timedOut();
      const page = found.filter((key) => !seen.has(key));
      for (const key of page) seen.add(key);
      if (page.length === 0) return;
      if (call.op === 'all') {
        const rows = (await this.#eval(client, page, ['page', 'all'])) as Reply[][];
        for (const row of rows) all.push(jsonOf(row, 0));
      } else {
        count += Number(((await this.#eval(client, page, ['page', 'count'])) as Reply[])[0]);
      }
    });
    return call.op === 'all' ? all : count;
  }

  async #eval(client: Client, keyList: string[], args: string[]): Promise<Reply> {
    return evalScript(client, this.#sha, this.#script, keyList, args);
  }
}

/** EVALSHA, loading the script first when the server does not have it. */
export async function evalScript(client: Client, sha: string, script: string, keyList: string[], args: string[]): Promise<Reply> {
  const command = ['EVALSHA', sha, String(keyList.length), ...keyList, ...args];
  try {
    return (await client.sendCommand(command)) as Reply;
  } catch (error) {
    if (!/^NOSCRIPT/.test(String((error as Error)?.message))) throw error;
    await client.sendCommand(['SCRIPT', 'LOAD', script]);
    return (await client.sendCommand(command)) as Reply;
  }
}

/** Calls `page` with each page of keys matching `pattern` (SCAN: never blocks the server). */
export async function eachPage(client: Client, pattern: string, page: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
    cursor = next;
    if (found.length > 0) await page(found);
  } while (cursor !== '0');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
