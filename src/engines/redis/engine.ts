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
import { ownerGiven, type RenewWithChanges, type StoreCall } from '../../store/protocol.ts';
import { backoffMs, isConnectionLoss, type Conn, type NodeClient } from './connection.ts';
import { keys, ownerTag, storeScript } from './script.ts';
import { afterLostReply, loseCommitReply, loseLockReply } from '../../store/fault-hook.ts';

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
  /** A Redis Cluster: keys carry their group (script.ts), and an owner's sessions may span groups. */
  cluster?: boolean;
  /** Opens a new connection (to replace one that left calls unanswered). */
  reconnect?: () => Promise<Conn>;
}

type Reply = string | number | null | Reply[];

/** One call of a batch as sent: its keys and arguments, and how its reply becomes an outcome. */
interface Call {
  keys: string[];
  args: string[];
  finish(reply: Reply): unknown;
  /** On a cluster: the group its keys are in (calls are sent one script call per group); undefined on one server. */
  group?: string;
  /**
   * On a cluster: the owner this call gives the session (create, put, patch,
   * renew with an owner), the member kept, and the id it is given to (all
   * but create: the session that must be live).
   */
  gives?: { owner: string; member: string; source?: string };
}

const member = (sid: string) => digest(sid).toString('base64url');

/**
 * A key's group on a Redis Cluster: the first byte of its digest, in hex
 * (256 groups; a renewed id is drawn with the same: store/ids.ts). Redis
 * holds nothing of an id but its digest.
 */
export const groupOf = (sid: string): string => digest(sid).toString('hex', 0, 1);

/** A key's group from its name (`{g}` after the table's `s:` or `o:`), or undefined. */
export function groupIn(key: string, table: string): string | undefined {
  if (key.charCodeAt(table.length + 3) !== 123) return undefined;
  const close = key.indexOf('}', table.length + 4);
  return close === -1 ? undefined : key.slice(table.length + 4, close);
}

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
const WRITE_OPS: ReadonlySet<string> = new Set([
  'create',
  'put',
  'patch',
  'renew',
  'delete',
  'revoke',
  'revokeAll',
  'upsert',
  'touchKey',
  'evict',
]);
/** What a batch wrote, for WAIT: per group (a slot; undefined on one server), commands that find the writes there. */
type Written = Map<string | undefined, string[][]>;
function addCheck(written: Written, group: string | undefined, check: string[]): void {
  const checks = written.get(group);
  if (checks) checks.push(check);
  else written.set(group, [check]);
}
/** Deletes a lock only while it is still the holder's. */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
// Takes a lock that is free or already the caller's (sent again after its
// reply was lost, it finds its own token): 1 when held, 0 when another holds it.
const ACQUIRE =
  "local held = redis.call('GET', KEYS[1]) if held == false or held == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";
/** Owner-wide calls: on a cluster, one per group the owner has sessions in. */
const OWNER_OPS: ReadonlySet<string> = new Set(['sessionsOf', 'revoke', 'revokeAll']);

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
  #client: Conn | null = null;
  readonly #cluster: boolean;
  #replacing = false;
  #closed = false;
  /** Batch ids: unique to this incarnation, the same for every sending of one batch. */
  readonly #idPrefix = randomBytes(9).toString('base64url');
  #nextId = 0;

  constructor(options: RedisEngineOptions) {
    this.#options = options;
    this.#cluster = options.cluster === true;
    this.#keys = keys(options.table);
    this.#script = storeScript(options.table, options.policy, {
      maxBytes: options.maxSessionBytes,
      maxPerOwner: options.maxPerOwner,
      lingerMs: options.lingerMs,
      // Every sending of a call happens within requestTimeout of the first.
      replyTtlMs: 2 * options.timeoutMs + 5000,
      cluster: options.cluster === true,
    });
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
  }

  adopt(client: Conn): void {
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
    // In the order made: a session call planned (one script call of its
    // group), or a call on the whole store or (on a cluster) on an owner's
    // every group, run on its own.
    const steps: Array<{ index: number; call?: Call; whole?: StoreCall }> = [];
    let writes = false;
    let clears = false;
    for (let i = 0; i < requests.length; i++) {
      const call = requests[i] as StoreCall;
      try {
        if (WRITE_OPS.has(call.op) || call.op === 'clear') writes = true;
        if (call.op === 'clear') clears = true;
        if (call.op === 'count' || call.op === 'all' || call.op === 'clear' || (this.#cluster && OWNER_OPS.has(call.op))) {
          steps.push({ index: i, whole: call });
        } else steps.push({ index: i, call: this.#plan(call) });
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
    const written: Written = new Map();
    // A cluster: an owner's groups are listed before a session of a group is
    // given to it (so "log out everywhere" finds every one), and read for the
    // owner-wide calls.
    let groups = new Map<string, string[] | Error>();
    if (this.#cluster) {
      const wanted = new Map<string, Set<string>>();
      for (const { call, whole } of steps) {
        if (call?.gives) addTo(wanted, call.gives.owner, call.group!);
        else if (whole && OWNER_OPS.has(whole.op)) addTo(wanted, whole.args[0] as string);
      }
      if (wanted.size > 0) groups = await this.#groups(wanted, deadline, written);
      for (const { index, call } of steps) {
        const listed = call?.gives ? groups.get(call.gives.owner) : undefined;
        if (listed instanceof Error) outcomes[index] = { ok: false, error: listed };
      }
    }
    // A cluster with a cap: a login and the cap across the owner's groups
    // run under a lock of the owner's, on their own.
    const capped = this.#cluster && (this.#options.maxPerOwner ?? 0) > 0;
    let segment: Array<{ index: number; call: Call }> = [];
    const flush = async () => {
      if (segment.length === 0) return;
      const settled = await this.#runCalls(
        segment.map(({ call }) => call),
        deadline,
        written,
        requests,
      );
      for (let k = 0; k < segment.length; k++) outcomes[segment[k].index] = settled[k];
      segment = [];
    };
    for (const { index, call, whole } of steps) {
      if (outcomes[index] !== undefined) continue;
      if (call && !(capped && call.gives)) {
        segment.push({ index, call });
        continue;
      }
      await flush();
      if (call) outcomes[index] = await this.#capped(call, deadline, written);
      else if (OWNER_OPS.has(whole!.op)) await this.#ownerCalls([{ index, call: whole! }], groups, outcomes, deadline, written);
      else {
        try {
          outcomes[index] = { ok: true, value: await this.#scan(whole!, deadline) };
        } catch (error) {
          outcomes[index] = { ok: false, error: isConnectionLoss(error) || error instanceof Late ? this.#timedOut() : error };
        }
      }
    }
    await flush();
    if (writes && this.#options.waitReplicas > 0) await this.#waitReplicas(requests, outcomes, deadline, written, clears);
    return outcomes;
  }

  /**
   * Calls, each group's in one script call (one command, one round trip;
   * on one server, all of them), the groups' at once. A call whose
   * connection was lost is sent again within requestTimeout; a group's
   * write calls carry the key of their replies (script.ts, 'batch!').
   * `written` collects the groups that wrote (for WAIT).
   */
  async #runCalls(calls: Call[], deadline: number, written: Written, requests?: Request[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(calls.length);
    const byGroup = new Map<string | undefined, number[]>();
    for (let i = 0; i < calls.length; i++) {
      const at = byGroup.get(calls[i].group);
      if (at) at.push(i);
      else byGroup.set(calls[i].group, [i]);
    }
    await Promise.all(
      [...byGroup].map(async ([group, indexes]) => {
        const writes = indexes.some((i) => WRITE_OPS.has(calls[i].args[0]));
        await this.#runGroup(
          indexes.map((index) => ({ index, call: calls[index] })),
          group,
          writes ? written : null,
          deadline,
          outcomes,
          requests,
        );
      }),
    );
    return outcomes;
  }

  async #runGroup(
    calls: Array<{ index: number; call: Call }>,
    group: string | undefined,
    written: Written | null,
    deadline: number,
    outcomes: Outcome[],
    requests?: Request[],
  ): Promise<void> {
    const writes = written !== null;
    let pending = calls;
    // The key of this batch's replies: the same for every sending of it (script.ts, 'batch!').
    const newReplyKey = () => (writes ? this.#keys.reply(`${this.#idPrefix}.${(this.#nextId++).toString(36)}`, group) : null);
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
      // The batch ran where its reply key is (written in the same script): WAIT checks it is still there.
      if (replyKey !== null && settled.stored) addCheck(written!, group, ['EXISTS', replyKey]);
      if (writes && requests && !faulted && loseCommitReply(requests)) {
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
  }

  /**
   * The owners' groups (adding the given ones first), each owner's list or
   * the error that kept it from being read. A list added to is WAITed on
   * with the batch's writes (`written`): a failover must not lose a group
   * that "log out everywhere" has to visit.
   */
  async #groups(wanted: Map<string, Set<string>>, deadline: number, written?: Written): Promise<Map<string, string[] | Error>> {
    const owners = [...wanted.keys()];
    const calls: Call[] = owners.map((owner) => ({
      keys: [this.#keys.groups(owner)],
      args: ['groups', ...wanted.get(owner)!],
      finish: (reply) => reply as string[],
      group: ownerTag(owner),
    }));
    const settled = await this.#runCalls(calls, deadline, new Map());
    const out = new Map<string, string[] | Error>();
    for (let i = 0; i < owners.length; i++) {
      const one = settled[i];
      out.set(owners[i], one.ok ? (one.value as string[]) : (one.error as Error));
      if (one.ok && written) {
        const list = this.#keys.groups(owners[i]);
        for (const added of wanted.get(owners[i])!) addCheck(written, ownerTag(owners[i]), ['ZSCORE', list, added]);
      }
    }
    return out;
  }

  /**
   * A call that gives a session an owner, on a cluster with a cap: under the
   * owner's lock, the owner's other sessions in every group are cut to
   * (cap - 1) first, then the call is sent — so no failure between the two
   * leaves the owner above the cap. A call on a session that is not live
   * (gone, renewed) ends nothing: it is sent alone, to get its answer.
   */
  async #capped(call: Call, deadline: number, written: Written): Promise<Outcome> {
    const gives = call.gives!;
    const lock = this.#keys.capLock(gives.owner);
    const token = `${this.#idPrefix}.${(this.#nextId++).toString(36)}`;
    for (let attempt = 0; ; attempt++) {
      const client = this.#client;
      try {
        const take = ['EVAL', ACQUIRE, '1', lock, token, String(this.#options.timeoutMs + 1000)];
        if (client && Number(await bounded(client.send(lock, take), deadline)) === 1 && !loseLockReply()) break;
      } catch (error) {
        if (!isConnectionLoss(error) && !(error instanceof Late)) return { ok: false, error };
      }
      if (Date.now() + backoffMs(attempt) >= deadline) return { ok: false, error: this.#timedOut() };
      await sleep(Math.min(backoffMs(attempt), 20));
    }
    let release = true;
    try {
      if (gives.source !== undefined) {
        const [alive] = await this.#runCalls([this.#plan({ op: 'alive', args: [gives.source] })], deadline, written);
        if (!alive.ok) return alive;
        if (alive.value !== true) return (await this.#runCalls([call], deadline, written))[0];
      }
      // The owner's groups as they are now, under the lock (another login may have added one since the batch began).
      const now = (await this.#groups(new Map([[gives.owner, new Set<string>()]]), deadline)).get(gives.owner)!;
      if (now instanceof Error) return { ok: false, error: now };
      const skip = gives.source === undefined ? [gives.member] : [gives.member, member(gives.source)];
      const problem = await this.#capAcross(gives.owner, skip, now, deadline, written);
      if (problem) return { ok: false, error: problem };
      const [outcome] = await this.#runCalls([call], deadline, written);
      // Unanswered in time, it may still run: the lock is left to expire rather than let another login count without it.
      if (!outcome.ok && outcome.error instanceof StoreUnavailableError) release = false;
      return outcome;
    } finally {
      // Released before the batch is answered (within its deadline: a stuck connection does not hold the worker).
      const client = this.#client;
      if (release && client) await bounded(client.send(lock, ['EVAL', RELEASE, '1', lock, token]), deadline).catch(() => {});
    }
  }

  /**
   * maxSessionsPerOwner across an owner's groups (a cluster): each group's
   * script kept its own share already; the owner's live sessions in every
   * group but the `skip`ped ones (the session being given the owner) are
   * then listed, and all but the (cap - 1) most recently used are ended.
   */
  async #capAcross(owner: string, skip: string[], groupList: string[], deadline: number, written: Written): Promise<Error | null> {
    const cap = this.#options.maxPerOwner ?? 0;
    const k = this.#keys;
    const listed = await this.#runCalls(
      groupList.map((group) => ({
        keys: [k.owner(owner, group)],
        args: ['capList', owner, ...skip],
        finish: (reply) => reply as string[],
        group,
      })),
      deadline,
      written,
    );
    const others: Array<{ member: string; touched: number; group: string }> = [];
    for (let i = 0; i < groupList.length; i++) {
      const one = listed[i];
      if (!one.ok) return one.error as Error;
      const flat = one.value as string[];
      for (let j = 0; j < flat.length; j += 2) others.push({ member: flat[j], touched: Number(flat[j + 1]), group: groupList[i] });
    }
    if (others.length < cap) return null;
    others.sort((a, b) => b.touched - a.touched);
    const evict = new Map<string, Set<string>>();
    for (const one of others.slice(cap - 1)) addTo(evict, one.group, one.member);
    const ended = await this.#runCalls(
      [...evict].map(([group, members]) => ({
        keys: [k.owner(owner, group)],
        args: ['evict', owner, ...[...members]],
        finish: () => null,
        group,
      })),
      deadline,
      written,
    );
    const failed = ended.find((one) => !one.ok);
    return failed && !failed.ok ? (failed.error as Error) : null;
  }

  /** sessionsOf, revoke and revokeAll on a cluster: the same call in each group the owner has sessions in. */
  async #ownerCalls(
    calls: Array<{ index: number; call: StoreCall }>,
    groups: Map<string, string[] | Error>,
    outcomes: Outcome[],
    deadline: number,
    written: Written,
  ): Promise<void> {
    const k = this.#keys;
    // Guarded revokeAll (revokeOtherSessions): the kept session's group first, checked and revoked in one script.
    const first: Array<{ index: number; call: Call }> = [];
    const rest: Array<{ index: number; owner: string; call: StoreCall; groups: string[] }> = [];
    for (const { index, call } of calls) {
      const owner = call.args[0] as string;
      const listed = groups.get(owner);
      if (listed === undefined || listed instanceof Error) {
        outcomes[index] = { ok: false, error: listed ?? this.#timedOut() };
        continue;
      }
      if (call.op === 'revokeAll' && call.args[2] === true) {
        const except = call.args[1] as string | null;
        if (except === null) {
          outcomes[index] = { ok: true, value: null };
          continue;
        }
        const group = groupOf(except);
        first.push({
          index,
          call: { keys: [k.owner(owner, group)], args: ['revokeAll', owner, member(except), '1'], finish: (r) => Number(r), group },
        });
        rest.push({ index, owner, call, groups: listed.filter((one) => one !== group) });
      } else rest.push({ index, owner, call, groups: listed });
    }
    if (first.length > 0) {
      const settled = await this.#runCalls(
        first.map((one) => one.call),
        deadline,
        written,
      );
      for (let i = 0; i < first.length; i++) outcomes[first[i].index] = settled[i];
    }
    const parts: Call[] = [];
    const spans: Array<{ index: number; op: string; from: number; to: number; base: number }> = [];
    for (const { index, owner, call, groups: list } of rest) {
      let base = 0;
      if (call.op === 'revokeAll' && call.args[2] === true) {
        const got = outcomes[index];
        if (!got.ok || got.value === -1) {
          if (got.ok) outcomes[index] = { ok: true, value: null };
          continue;
        }
        base = got.value as number;
      }
      const from = parts.length;
      for (const group of list) {
        const key = [k.owner(owner, group)];
        if (call.op === 'sessionsOf') parts.push({ keys: key, args: ['sessionsOf', owner], finish: (r) => r, group });
        else if (call.op === 'revoke')
          parts.push({
            keys: key,
            args: ['revoke', owner, Buffer.from(call.args[1] as Uint8Array).toString('base64url')],
            finish: (r) => Number(r),
            group,
          });
        else {
          const except = call.args[1] as string | null;
          parts.push({
            keys: key,
            args: ['revokeAll', owner, except === null ? '' : member(except), '0'],
            finish: (r) => Number(r),
            group,
          });
        }
      }
      spans.push({ index, op: call.op, from, to: parts.length, base });
    }
    const settled = await this.#runCalls(parts, deadline, written);
    for (const { index, op, from, to, base } of spans) {
      const mine = settled.slice(from, to);
      const failed = mine.find((one) => !one.ok);
      if (failed) {
        outcomes[index] = failed;
        continue;
      }
      const values = mine.map((one) => (one as { value: unknown }).value);
      if (op === 'sessionsOf') outcomes[index] = { ok: true, value: sessionRows(values.flat() as Reply[][]) };
      else if (op === 'revoke') outcomes[index] = { ok: true, value: values.some((v) => v === 1) };
      else outcomes[index] = { ok: true, value: base + values.reduce((sum: number, v) => sum + (v as number), 0) };
    }
  }

  #timedOut(): StoreUnavailableError {
    return new StoreUnavailableError(`the Redis server did not answer within requestTimeout (${this.#options.timeoutMs} ms)`);
  }

  /**
   * The calls in one script call (one command, one round trip: the script's
   * 'batch'), each run alone under pcall; NOSCRIPT (a restarted or new
   * server) sends it again as EVAL. A batch unanswered at the
   * deadline is Late; a lost connection rejects every call of it.
   */
  async #send(
    client: Conn,
    calls: Array<{ call: Call }>,
    deadline: number,
    replyKey: string | null,
  ): Promise<PromiseSettledResult<Reply>[] & { stored?: boolean }> {
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
        reply = await Promise.race([client.send(keyList[0], command) as Promise<Reply>, late]);
      } catch (error) {
        if (!/^NOSCRIPT/.test(String((error as Error)?.message))) throw error;
        // Never sent once its callers were told it failed.
        if (isLate) return all({ status: 'rejected', reason: new Late(stuck()) });
        // EVAL with the script itself (which the server then keeps): on a
        // cluster, wherever MOVED or ASK takes it, the node runs it.
        reply = await Promise.race([client.send(keyList[0], ['EVAL', this.#script, ...command.slice(2)]) as Promise<Reply>, late]);
      }
      if (reply === 'late') return all({ status: 'rejected', reason: new Late(stuck()) });
      // One reply per call, then whether the reply key holds the writes' replies.
      const replies = reply as Reply[];
      const results: PromiseSettledResult<Reply>[] & { stored?: boolean } = replies
        .slice(0, calls.length)
        .map((one): PromiseSettledResult<Reply> => {
          if (Array.isArray(one) && one[0] === '!ERR') return { status: 'rejected', reason: new Error(String(one[1])) };
          return { status: 'fulfilled', value: one };
        });
      results.stored = replies[calls.length] === 1;
      return results;
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
  async #waitReplicas(requests: Request[], outcomes: Outcome[], deadline: number, written: Written, clears: boolean): Promise<void> {
    const wanted = this.#options.waitReplicas;
    let reached = wanted;
    let moved = false;
    try {
      const client = this.#client;
      if (!client) throw this.#timedOut();
      // Within what the caller waits, with room for the reply to reach it (its own timer runs from before the batch).
      const ms = Math.max(1, Math.floor((deadline - Date.now()) * 0.8));
      if (clears && !this.#cluster && !written.has(undefined)) written.set(undefined, []);
      const counts = await bounded(
        Promise.all([
          // Each group's primary that was written to: a key of the group takes every command to it; the checks
          // (its reply key, a list's entry) say the write is on the server that answered (not lost to a failover).
          ...[...written].map(async ([group, checks]) => {
            const key = this.#keys.wait(group);
            // A connection lost meanwhile: asked again on the new one (its SET first makes WAIT cover all the server has).
            for (let attempt = 0; ; attempt++) {
              try {
                const now = this.#client ?? client;
                const [, waited, ...found] = await Promise.all([
                  now.send(key, ['SET', key, '1', 'PX', '1000']),
                  now.send(key, ['WAIT', String(wanted), String(Math.max(1, Math.min(ms, Math.floor((deadline - Date.now()) * 0.8))))]),
                  ...checks.map((check) => now.send(key, check)),
                ]);
                if (found.some((one) => one === null || one === 0)) moved = true;
                return Number(waited);
              } catch (error) {
                if (!isConnectionLoss(error) || Date.now() + backoffMs(attempt) >= deadline) throw error;
                await sleep(backoffMs(attempt));
              }
            }
          }),
          // A cluster's clear: every primary.
          ...(clears && this.#cluster
            ? (await client.primaries()).map(async (node) => Number(await node.sendCommand(['WAIT', String(wanted), String(ms)])))
            : []),
        ]),
        deadline,
      );
      for (const count of counts) reached = Math.min(reached, count);
    } catch {
      reached = 0;
    }
    if (reached >= wanted && !moved) return;
    const error = new StoreUnavailableError(
      moved
        ? 'the server that answered WAIT does not have the write (a failover in between): it may be lost; waitReplicas refuses to acknowledge it'
        : `the write reached ${reached} of the ${wanted} replicas waitReplicas asks for within requestTimeout (${this.#options.timeoutMs} ms); it may not survive a failover`,
    );
    for (let i = 0; i < requests.length; i++) {
      if (outcomes[i]?.ok && (WRITE_OPS.has(requests[i].op) || requests[i].op === 'clear')) outcomes[i] = { ok: false, error };
    }
  }

  #plan(call: StoreCall): Call {
    const planned = this.#planned(call);
    if (!this.#cluster) return planned;
    // One group per call: its first key's (a renew's two keys share it).
    const group = groupIn(planned.keys[0] ?? '', this.#options.table);
    if (planned.keys.some((key) => groupIn(key, this.#options.table) !== group)) {
      throw new TypeError("on a Redis Cluster, a renewed id's digest starts with the old one's first byte (its slot)");
    }
    planned.group = group;
    const owner = ownerGiven(call);
    if (owner !== undefined) {
      const kept = (call.op === 'renew' ? call.args[1] : call.args[0]) as string;
      planned.gives = { owner, member: member(kept), source: call.op === 'create' ? undefined : (call.args[0] as string) };
    }
    return planned;
  }

  /** The session's key (on a cluster, in its group). */
  #sk(sid: string): string {
    return this.#cluster ? this.#keys.session(member(sid), groupOf(sid)) : this.#keys.session(member(sid));
  }

  #planned(call: StoreCall): Call {
    const k = this.#keys;
    switch (call.op) {
      case 'get':
      case 'load': {
        const op = call.op;
        return {
          keys: [this.#sk(call.args[0])],
          // 'peek': a still load (the touch option), no touch.
          args: [call.op === 'load' && call.args[1] === true ? 'peek' : 'load'],
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
          keys: [this.#sk(call.args[0])],
          args: ['alive'],
          finish: (reply) => ((reply as Reply[])[0] === WAS_RENEWED ? RENEWED : (reply as Reply[])[0] === DONE),
        };
      case 'create': {
        const [sid, json, owner, maxAge] = call.args;
        this.#checkSize(json);
        const fields = fieldsOf(json);
        return {
          keys: [this.#sk(sid)],
          args: ['create', ownerSpec(owner), lifetimeSpec(maxAge ?? null), String(fields.length / 2), ...fields],
          finish: () => sid,
        };
      }
      case 'put': {
        const [sid, json, owner, maxAge] = call.args;
        this.#checkSize(json);
        const fields = fieldsOf(json);
        return {
          keys: [this.#sk(sid)],
          args: ['put', ownerSpec(owner), lifetimeSpec(maxAge), String(fields.length / 2), ...fields],
          finish: (reply) => this.#verdict(reply, sid, null),
        };
      }
      case 'patch': {
        const [sid, set, unset, owner, maxAge] = call.args;
        const fields = set === null ? [] : fieldsOf(set);
        const gone = (unset ?? []).map((name) => `.${JSON.stringify(name)}`);
        return {
          keys: [this.#sk(sid)],
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
          keys: [this.#sk(sid), this.#sk(next)],
          args,
          finish: (reply) => this.#verdict(reply, next, null),
        };
      }
      case 'delete':
        return {
          keys: [this.#sk(call.args[0])],
          args: ['delete'],
          finish: (reply) => ((reply as Reply[])[0] === WAS_RENEWED ? RENEWED : null),
        };
      case 'sessionsOf':
        return {
          keys: [k.owner(call.args[0])],
          args: ['sessionsOf', call.args[0]],
          finish: (reply) => sessionRows(reply as Reply[][]),
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
          keys: [this.#sk(key)],
          args: ['upsert', remainingSpec(remaining), String(fields.length / 2), ...fields],
          finish: () => null,
        };
      }
      case 'touchKey': {
        const [key, remaining, cookie] = call.args;
        return {
          keys: [this.#sk(key)],
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

  async #scanOnce(client: Conn, call: StoreCall, deadline: number): Promise<unknown> {
    const table = this.#options.table;
    if (call.op === 'clear') {
      for (const pattern of [this.#keys.sessions, this.#keys.owners, this.#keys.directories]) {
        await eachPage(client, pattern, async (page) => {
          for (const keyList of bySlot(page, table)) await client.send(keyList[0], ['UNLINK', ...keyList]);
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
        for (const rows of (await evalBySlot(client, this.#sha, this.#script, page, ['page', 'all'], table)) as Reply[][][]) {
          for (const row of rows) all.push(jsonOf(row, 0));
        }
      } else {
        for (const reply of (await evalBySlot(client, this.#sha, this.#script, page, ['page', 'count'], table)) as Reply[][]) {
          count += Number(reply[0]);
        }
      }
    });
    return call.op === 'all' ? all : count;
  }
}

/** EVALSHA, or EVAL of the script when the server does not have it (on a cluster: the node of the first key). */
export async function evalScript(client: Conn, sha: string, script: string, keyList: string[], args: string[]): Promise<Reply> {
  const command = ['EVALSHA', sha, String(keyList.length), ...keyList, ...args];
  try {
    return (await client.send(keyList[0], command)) as Reply;
  } catch (error) {
    if (!/^NOSCRIPT/.test(String((error as Error)?.message))) throw error;
    return (await client.send(keyList[0], ['EVAL', script, ...command.slice(2)])) as Reply;
  }
}

/** Keys grouped so that each group shares a slot: by the group in their name, else each key alone. */
export function bySlot(keyList: string[], table: string): string[][] {
  const groups = new Map<string, string[]>();
  for (const key of keyList) {
    const group = groupIn(key, table);
    const id = group === undefined ? `=${key}` : group;
    const list = groups.get(id);
    if (list) list.push(key);
    else groups.set(id, [key]);
  }
  return [...groups.values()];
}

/** The script on a page of keys, one script call per slot (one server: the page in one call); the replies. */
export async function evalBySlot(
  client: Conn,
  sha: string,
  script: string,
  page: string[],
  args: string[],
  table: string,
): Promise<Reply[]> {
  const lists = client.cluster ? bySlot(page, table) : [page];
  return Promise.all(lists.map((keyList) => evalScript(client, sha, script, keyList, args)));
}

/** Calls `page` with each page of keys matching `pattern`, on every primary (SCAN: never blocks the server). */
export async function eachPage(client: Conn, pattern: string, page: (keys: string[]) => Promise<void>): Promise<void> {
  for (const node of await client.primaries()) await eachNodePage(node, pattern, page);
}

export async function eachNodePage(node: NodeClient, pattern: string, page: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = (await node.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
    cursor = next;
    if (found.length > 0) await page(found);
  } while (cursor !== '0');
}

function addTo(map: Map<string, Set<string>>, key: string, value?: string): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  if (value !== undefined) set.add(value);
}

/** sessionsOf's rows from the script's, most recently used first. */
function sessionRows(rows: Reply[][]): Array<readonly [string, number, number, number, string]> {
  return rows
    .map((row) => [`h${row[0] as string}`, Number(row[1]), Number(row[2]), Number(row[3]), jsonOf(row, 4)] as const)
    .sort((a, b) => b[2] - a[2]);
}

/** The promise's value, or Late once the deadline has passed. */
async function bounded<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Late(false)), Math.max(0, deadline - Date.now()));
  });
  promise.catch(() => {});
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
