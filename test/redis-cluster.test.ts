// The Redis engine on a Redis Cluster of its own (six redis-server processes:
// three primaries, three replicas; test/redis-server.ts), where what a
// cluster adds is tested: keys spread over every primary while the keys of
// one call share a slot, owners whose sessions are in several groups, count
// and the sweep on every primary, slots moving under load (MOVED, ASK,
// TRYAGAIN) and a primary SIGKILLed under load (a failover). The contract
// suites run on a cluster too (test/run.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSessionApp, StoreUnavailableError, type SessionApp } from '../src/index.ts';
import { main as cli } from '../src/cli.ts';
import { redisAge, redisCommands } from './engines.ts';
import { redisBinaries, startRedisCluster, type RedisCluster } from './redis-server.ts';

let cluster: RedisCluster;
const apps: SessionApp[] = [];
// Fault injection (src/store/fault-hook.ts), read by the store's actor when it starts.
const faults = mkdtempSync(join(tmpdir(), 'ss-cluster-faults-'));
const LOSE_LOCK_REPLY = join(faults, 'lose-lock-reply');
process.env.SUPERVISED_SESSIONS_LOSE_LOCK_REPLY = LOSE_LOCK_REPLY;

async function app(config: Record<string, unknown> = {}, query = ''): Promise<SessionApp> {
  const started = await startSessionApp({ database: `${cluster.url}${query}`, sweepSignal: false, cleanerInterval: 3600, ...config });
  apps.push(started);
  return started;
}

test.before(async () => {
  cluster = await startRedisCluster();
});

test.after(async () => {
  for (const each of apps) await each.stop();
  cluster?.destroy();
  rmSync(faults, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const digestOf = (sid: string) => createHash('sha256').update(sid).digest('base64url');
/** A session's group on a cluster: the first byte of its id's digest, in hex (src/engines/redis). */
const groupOf = (sid: string) => createHash('sha256').update(sid).digest('hex').slice(0, 2);
/** An owner's hash tag on a cluster: the first 16 characters of its digest, base64url (src/engines/redis). */
const ownerTagOf = (owner: string) => createHash('sha256').update(owner).digest('base64url').slice(0, 16);
const slotOf = (key: string) => Number(cluster.nodes[0].cli('CLUSTER', 'KEYSLOT', key).trim());

/** The table's keys on each running primary. */
async function keysPerPrimary(table: string): Promise<number[]> {
  return redisCommands(async (_send, _scan, nodes) => {
    const counts: number[] = [];
    for (const send of await nodes()) {
      let count = 0;
      let cursor = '0';
      do {
        const [next, found] = (await send('SCAN', cursor, 'MATCH', `${table}:s:*`, 'COUNT', '1000')) as [string, string[]];
        cursor = next;
        count += found.length;
      } while (cursor !== '0');
      counts.push(count);
    }
    return counts;
  }, cluster.url);
}

/** Output of the command line, run in this process. */
async function command(...args: string[]): Promise<{ code: number; stdout: string }> {
  const out: string[] = [];
  const code = await cli(args, { out: (line) => out.push(line), err: (line) => out.push(line) });
  return { code: Number(code), stdout: out.join('\n') };
}

test('sessions spread over every primary; a renew stays in its slot; count, the sweep and the command line visit every primary', async () => {
  const table = 'spread';
  const sessions = await app({ table, maxAge: 3600 });
  const ids: string[] = [];
  for (let i = 0; i < 90; i++) ids.push((await sessions.store.put(null, { i }))!);
  const perPrimary = await keysPerPrimary(table);
  assert.is(perPrimary.length, 3);
  assert.ok(
    perPrimary.every((count) => count > 0),
    `every primary holds sessions: ${perPrimary.join(', ')}`,
  );
  // A renewed id's digest starts with the old one's byte (its group): both keys are in one slot.
  for (let i = 0; i < 10; i++) {
    const next = (await sessions.store.renew(ids[i]))!;
    assert.is.not(next, ids[i]);
    assert.is.not(next.slice(0, 8), ids[i].slice(0, 8), 'nothing of the old id is kept');
    assert.is(groupOf(next), groupOf(ids[i]));
    assert.is(slotOf(`${table}:s:{${groupOf(next)}}${digestOf(next)}`), slotOf(`${table}:s:{${groupOf(ids[i])}}${digestOf(ids[i])}`));
    assert.is(await sessions.store.get(ids[i]), null);
    assert.equal(await sessions.store.get(next), { i });
    ids[i] = next;
  }
  assert.is(await sessions.store.count(), 90);
  // Thirty sessions made dead (their times two hours back), on every primary: the sweep finds them all.
  await redisAge(
    table,
    2 * 3600 * 1000,
    ids.slice(30, 60).map((id) => createHash('sha256').update(id).digest()),
    cluster.url,
  );
  assert.is(await sessions.store.count(), 60);
  const report = await sessions.sweep();
  assert.is(report.skipped, false);
  assert.ok(report.deleted >= 30, `the sweep deleted the dead sessions and the renewed ids' tombstones: ${report.deleted}`);
  const stats = await command('stats', '--database', cluster.url, '--table', table, '--max-age', '3600');
  assert.is(stats.code, 0);
  assert.match(stats.stdout, /live: 60\b/);
});

test("an owner's sessions in groups on every primary: sessionsOf, revoke, revokeAll's exact count, and the cap across groups", async () => {
  const sessions = await app({ table: 'owners' });
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) ids.push((await sessions.store.put(null, { i }, { owner: 'ada' }))!);
  // Ids are random: twelve sessions of one owner sit in (almost surely) several groups and primaries.
  const groups = new Set(ids.map(groupOf));
  assert.ok(groups.size >= 6, `the owner's sessions are in ${groups.size} groups`);
  const primaries = new Set(ids.map((id) => cluster.primaryOf(slotOf(`{${groupOf(id)}}`)).port));
  assert.ok(primaries.size >= 2, `on ${primaries.size} primaries`);
  const listed = await sessions.store.sessionsOf('ada');
  assert.is(listed.length, 12);
  assert.is(await sessions.store.revoke('ada', listed[0].handle), true);
  assert.is(await sessions.store.revoke('grace', listed[1].handle), false, "another owner's handle ends nothing");
  const kept = ids.find((id) => (listed[0].data as { i: number }).i !== ids.indexOf(id))!;
  assert.is(await sessions.store.revokeAll('ada', { except: kept }), 10);
  assert.ok(await sessions.store.get(kept));
  assert.is((await sessions.store.sessionsOf('ada')).length, 1);
  assert.is(await sessions.store.revokeAll('ada'), 1);
  for (const id of ids) assert.is(await sessions.store.get(id), null);
  // A session given its owner by a patch (its id's group is not chosen for the owner) counts the same.
  const later = (await sessions.store.put(null, { later: true }))!;
  assert.is(await sessions.store.patch(later, { owner: 'ada' }), true);
  assert.is(await sessions.store.revokeAll('ada'), 1);
  assert.is(await sessions.store.get(later), null);

  // The cap across groups: eight logins at once, three kept (the last ones' groups differ).
  const capped = await app({ table: 'capped', maxSessionsPerOwner: 3 });
  const anonymous = await Promise.all(Array.from({ length: 8 }, (_, n) => capped.store.put(null, { n })));
  const renewed = await Promise.all(anonymous.map((id) => capped.store.renew(id!, { owner: 'lin' })));
  assert.ok(renewed.every((id) => id !== null));
  const left = await capped.store.sessionsOf('lin');
  assert.is(left.length, 3, 'never above the cap, and the cap filled');
  let live = 0;
  for (const id of renewed) if ((await capped.store.get(id!)) !== null) live++;
  assert.is(live, 3);
});

test("a login whose cap-lock reply was lost asks again and finds the lock its own: served, the cap kept, the lock released; another holder's lock is never taken over", async () => {
  const capped = await app({ table: 'lostlock', maxSessionsPerOwner: 2, requestTimeout: 2000 });
  const first = (await capped.store.put(null, { n: 1 }))!;
  writeFileSync(LOSE_LOCK_REPLY, 'capLock');
  const renewed = await capped.store.renew(first, { owner: 'kim' });
  assert.ok(existsSync(`${LOSE_LOCK_REPLY}.lost`), 'the lock was taken and its reply lost');
  assert.not.ok(existsSync(LOSE_LOCK_REPLY));
  assert.ok(renewed, 'the login is served, not failed when its own lock was found held');
  assert.equal(await redisCommands((_send, scan) => scan('lostlock:l:*'), cluster.url), [], 'the lock is released');
  // The owner's next logins take the lock at once and the cap holds.
  const more = await Promise.all([1, 2].map(async (n) => capped.store.renew((await capped.store.put(null, { n }))!, { owner: 'kim' })));
  assert.ok(more.every((id) => id !== null));
  assert.is((await capped.store.sessionsOf('kim')).length, 2);

  // Another holder's lock (another app process's login, its token) is never taken over: the login waits, then fails.
  const lock = `lostlock:l:{${ownerTagOf('kim')}}kim`;
  await redisCommands((send) => send('SET', lock, 'another-process.1', 'PX', '60000'), cluster.url);
  const waiting = (await capped.store.put(null, { n: 3 }))!;
  const refused = await capped.store.renew(waiting, { owner: 'kim' }).then(
    () => null,
    (error: unknown) => error,
  );
  assert.instance(refused, StoreUnavailableError);
  assert.is(await redisCommands((send) => send('GET', lock), cluster.url), 'another-process.1', "the other holder's lock is untouched");
  assert.is((await capped.store.sessionsOf('kim')).length, 2, 'nothing ended without the lock');
  // Once it is released, the login is served.
  await redisCommands((send) => send('DEL', lock), cluster.url);
  assert.ok(await capped.store.renew(waiting, { owner: 'kim' }));
  assert.is((await capped.store.sessionsOf('kim')).length, 2);
});

/** Writers that create and patch sessions until stopped: what was acknowledged, and how calls failed. */
function writers(sessions: SessionApp, count: number) {
  const acked = new Map<string, number>();
  const failures = new Map<string, number>();
  let stop = false;
  let served = 0;
  let servedAfter = 0;
  let mark = Number.POSITIVE_INFINITY;
  const loops = Array.from({ length: count }, async (_, n) => {
    for (let i = 0; !stop && i < 100_000; i++) {
      try {
        const id = (await sessions.store.put(null, { n, i }))!;
        acked.set(id, i);
        if (await sessions.store.patch(id, { set: { patched: i } })) acked.set(id, -i - 1);
        served++;
        if (Date.now() > mark) servedAfter++;
      } catch (error) {
        const name = error instanceof StoreUnavailableError ? 'StoreUnavailableError' : String(error);
        failures.set(name, (failures.get(name) ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  return {
    acked,
    failures,
    served: () => served,
    servedAfter: () => servedAfter,
    markNow: () => {
      mark = Date.now();
    },
    stop: async () => {
      stop = true;
      await Promise.all(loops);
    },
  };
}

/** Every acknowledged write is there: each session with its data (patched when the patch was acknowledged). */
async function lostOf(sessions: SessionApp, acked: Map<string, number>): Promise<number> {
  let lost = 0;
  for (const [id, i] of acked) {
    const data = (await sessions.store.get(id)) as { i: number; patched?: number } | null;
    if (data === null || (i < 0 && data.patched !== -i - 1)) lost++;
  }
  return lost;
}

test('slots moving under load (redis-cli --cluster reshard: MOVED, ASK, TRYAGAIN): no call fails, logins and log-out-everywhere included; nothing acknowledged is lost', async () => {
  const sessions = await app({ table: 'moving', requestTimeout: 10_000 });
  const before: string[] = [];
  for (let i = 0; i < 200; i++) before.push((await sessions.store.put(null, { before: i }))!);
  const load = writers(sessions, 4);
  // Logins and log-out-everywhere meanwhile: calls that reach sessions beyond their declared keys, in slots that move.
  let stopLogins = false;
  const counts: Array<[number, number]> = [];
  const loginFailures: string[] = [];
  const logins = Array.from({ length: 2 }, async (_, n) => {
    const owner = `mover-${n}`;
    let mine: string[] = [];
    for (let i = 0; !stopLogins && i < 10_000; i++) {
      try {
        const next = (await sessions.store.renew((await sessions.store.put(null, { n, i }))!, { owner }))!;
        mine.push(next);
        if (i % 5 === 4) {
          counts.push([await sessions.store.revokeAll(owner, { except: next }), mine.length - 1]);
          mine = [next];
        }
      } catch (error) {
        loginFailures.push(String(error));
      }
    }
  });
  const from = cluster.primaryOf(0);
  const to = cluster.primaryOf(16383);
  const bin = redisBinaries();
  const id = (port: number) =>
    cluster.nodes
      .find((node) => node.port === port)!
      .cli('CLUSTER', 'MYID')
      .trim();
  // 2000 slots, in batches of 10 keys: the move takes a while, and the writers run through it.
  const moved = await new Promise<{ code: number | null; out: string }>((resolve) => {
    let out = '';
    const child = spawn(
      bin.cli,
      [
        '--cluster',
        'reshard',
        `127.0.0.1:${from.port}`,
        '--cluster-from',
        id(from.port),
        '--cluster-to',
        id(to.port),
        '--cluster-slots',
        '2000',
        '--cluster-pipeline',
        '10',
        '--cluster-yes',
      ],
      { env: bin.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    child.on('exit', (code) => resolve({ code, out }));
  });
  await load.stop();
  stopLogins = true;
  await Promise.all(logins);
  assert.equal(loginFailures, [], 'no login or log-out-everywhere failed while the slots moved');
  assert.ok(counts.length > 5, `log-out-everywhere ran ${counts.length} times`);
  for (const [ended, expected] of counts) assert.is(ended, expected, "revokeAll's count is exact");
  assert.is(moved.code, 0, moved.out.slice(-500));
  assert.is(cluster.primaryOf(0).port, to.port, 'slot 0 moved');
  assert.equal([...load.failures], [], 'no call failed while the slots moved');
  assert.ok(load.served() > 50, `the writers were served throughout: ${load.served()}`);
  assert.is(await lostOf(sessions, load.acked), 0);
  for (const [i, sid] of before.entries()) assert.equal(await sessions.store.get(sid), { before: i });
});

test('a primary SIGKILLed under load: with waitReplicas=1 every acknowledged write is on the new primary, nothing deleted comes back, calls are served again', async () => {
  const sessions = await app({ table: 'failover', requestTimeout: 8000 }, '?waitReplicas=1');
  const deleted: string[] = [];
  for (let i = 0; i < 60; i++) deleted.push((await sessions.store.put(null, { gone: i }))!);
  for (const id of deleted) await sessions.store.delete(id);
  const load = writers(sessions, 6);
  await sleep(800);
  const victim = cluster.primaryOf(slotOf('{fo}'));
  const killedAt = Date.now();
  await victim.kill();
  // The replica takes over (cluster-node-timeout 1 s); the old primary comes back as its replica, so WAIT 1 can be met again.
  await sleep(3000);
  await victim.start();
  await cluster.ready();
  load.markNow();
  await sleep(1500);
  await load.stop();
  const recovered = Date.now() - killedAt;
  assert.ok(load.servedAfter() > 0, 'calls were served after the failover');
  for (const name of load.failures.keys()) assert.is(name, 'StoreUnavailableError', 'a call failed only with a 503, past requestTimeout');
  assert.is(await lostOf(sessions, load.acked), 0, 'every acknowledged write survived the failover');
  for (const id of deleted) assert.is(await sessions.store.get(id), null, 'nothing deleted came back');
  console.log(
    `# failover with waitReplicas=1: ${load.acked.size} sessions acknowledged, 0 lost, ${[...load.failures.values()].reduce((a, b) => a + b, 0)} calls failed with 503, served again within ${recovered} ms of the kill (including the old primary's restart)`,
  );
});

test.run();
