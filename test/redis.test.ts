// The Redis engine alone, on real redis-server processes this suite starts
// (test/redis-server.ts): durability across a SIGKILL of Redis, lost
// connections, waitReplicas, the start's durability warning, key prefixes,
// the sweep lock and the owners' indexes, the command line. The contract
// suites run on Redis too (test/run.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearStore, dropStore, setupStore, startSessionApp, type SessionApp } from '../src/index.ts';
import { main as cli } from '../src/cli.ts';
import { createHash } from 'node:crypto';
import { redisCommands, redisDump } from './engines.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

// The lost-reply fault hook (src/store/fault-hook.ts): armed only while this
// file exists; every store actor this suite starts reads the variable.
const LOSE_REPLY = join(tmpdir(), `supervised-sessions-redis-lose-reply-${process.pid}`);
process.env.SUPERVISED_SESSIONS_LOSE_COMMIT_REPLY = LOSE_REPLY;

const servers: RedisServer[] = [];
const apps: SessionApp[] = [];

async function server(settings: Record<string, string> = {}): Promise<RedisServer> {
  const started = await startRedis({ settings });
  servers.push(started);
  return started;
}

async function app(database: string, config: Record<string, unknown> = {}): Promise<SessionApp> {
  const started = await startSessionApp({ database, sweepSignal: false, cleanerInterval: 3600, ...config });
  apps.push(started);
  return started;
}

test.after(async () => {
  for (const each of apps) await each.stop();
  for (const each of servers) each.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a SIGKILL of Redis (appendfsync always) loses no acknowledged write; calls made while it is down wait and are served when it is back', async () => {
  const redis = await server();
  const sessions = await app(redis.url, { table: 'crash', requestTimeout: 10_000 });
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) ids.push((await sessions.store.put(null, { i }))!);
  await Promise.all(ids.map((id, i) => sessions.store.patch(id, { set: { patched: i } })));
  await redis.kill();
  // Calls while Redis is down: they wait (requestTimeout 10 s) for it to come back.
  const during = sessions.store.put(null, { during: true });
  await sleep(300);
  await redis.start();
  const written = await during;
  assert.ok(written, 'the call made while Redis was down was served once it was back');
  for (const [i, id] of ids.entries()) assert.equal(await sessions.store.get(id), { i, patched: i }, `session ${i} survived the crash`);
  assert.equal(await sessions.store.get(written!), { during: true });
  assert.is(await sessions.store.count(), 51);
});

test('past requestTimeout with Redis down, a call fails with StoreUnavailableError naming the timeout; the app serves again once Redis is back', async () => {
  const redis = await server();
  const sessions = await app(redis.url, { table: 'down', requestTimeout: 600 });
  const id = (await sessions.store.put(null, { n: 1 }))!;
  await redis.kill();
  const error = await sessions.store.put(null, { n: 2 }).then(
    () => null,
    (e: unknown) => e as Error & { code?: string },
  );
  assert.is(error?.name, 'StoreUnavailableError');
  assert.is(error?.code, 'ERR_SESSION_STORE_UNAVAILABLE');
  assert.match(error!.message, /requestTimeout \(600 ms\)/);
  await redis.start();
  let back: unknown = null;
  for (let attempt = 0; attempt < 40 && back === null; attempt++) {
    back = await sessions.store.get(id).catch(() => null);
    if (back === null) await sleep(100);
  }
  assert.equal(back, { n: 1 });
});

test("CLIENT KILL of the app's connections under load: every acknowledged write is there, nothing failed", async () => {
  const redis = await server();
  const sessions = await app(redis.url, { table: 'killed', requestTimeout: 10_000 });
  const acknowledged = new Map<string, number>();
  let failures = 0;
  let stop = false;
  const load = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      const writes = Array.from({ length: 8 }, (_, k) =>
        sessions.store.put(null, { i, k }).then(
          (id) => {
            if (id) acknowledged.set(id, i * 8 + k);
          },
          () => {
            failures++;
          },
        ),
      );
      await Promise.all(writes);
    }
  })();
  for (let round = 0; round < 5; round++) {
    await sleep(150);
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
  }
  stop = true;
  await load;
  assert.is(failures, 0, 'no call failed: each lost one was sent again');
  assert.ok(acknowledged.size > 40, `load ran (${acknowledged.size} writes)`);
  for (const [id, n] of acknowledged) {
    const data = (await sessions.store.get(id)) as { i: number; k: number } | null;
    assert.ok(data !== null && data.i * 8 + data.k === n, `acknowledged write ${n} is there`);
  }
});

test('?waitReplicas=1 without a replica: a write is a StoreUnavailableError (never acknowledged); with a real replica it is acknowledged once the replica has it', async () => {
  const primary = await server();
  const lonely = await app(`${primary.url}?waitReplicas=1`, { table: 'wait', requestTimeout: 500 });
  const error = await lonely.store.put(null, { n: 1 }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.is(error?.name, 'StoreUnavailableError', String(error));
  assert.match(error!.message, /reached 0 of the 1 replicas waitReplicas asks for/, error!.message);
  const replica = await server({ replicaof: `127.0.0.1 ${primary.port}` });
  // Up on both sides: the replica linked, and the primary counting it online (WAIT counts only those).
  for (
    let attempt = 0;
    attempt < 100 &&
    !(replica.cli('INFO', 'replication').includes('master_link_status:up') && primary.cli('INFO', 'replication').includes('state=online'));
    attempt++
  )
    await sleep(100);
  // A requestTimeout a loaded machine's first WAIT round trips fit in (500 ms above was only to fail fast).
  const patient = await app(`${primary.url}?waitReplicas=1`, { table: 'wait', requestTimeout: 5000 });
  const id = await patient.store.put(null, { n: 2 });
  assert.ok(id, 'acknowledged with the replica up');
  const onReplica = await redisDump('wait', replica.url);
  const digest = createHash('sha256').update(id!).digest('base64url');
  assert.ok(onReplica.includes(`wait:s:${digest}`), 'the replica holds the session acknowledged');
});

test('a server with appendonly off: the app warns once at start, saying what a crash loses; with waitReplicas it does not', async () => {
  const volatile = await server({ appendonly: 'no' });
  const warnings: string[] = [];
  const listener = (warning: Error & { code?: string }) => {
    if (warning.code === 'SUPERVISED_SESSIONS_REDIS_DURABILITY') warnings.push(warning.message);
  };
  process.on('warning', listener);
  try {
    const first = await app(volatile.url, { table: 'warned' });
    await first.kill('store');
    await first.store.put(null, { n: 1 });
    await sleep(100);
    assert.is(warnings.length, 1, 'once, not again when the store restarts');
    assert.match(warnings[0], /appendonly off: a crash or restart of Redis loses every session written since its last snapshot/);
    await app(`${volatile.url}?waitReplicas=0`, { table: 'warned2' });
    await sleep(100);
    assert.is(warnings.length, 2, 'waitReplicas=0 protects nothing: warned');
  } finally {
    process.off('warning', listener);
  }
});

/** Arms the lost-reply hook for `op`, runs `call`, and runs `gap` while its reply is "lost" (as another app server would). */
async function lostReply<T>(op: string, call: () => Promise<T>, gap: () => Promise<void>): Promise<T> {
  writeFileSync(LOSE_REPLY, op);
  try {
    const pending = call();
    // Awaited below; a rejection before then is that await's failure, not an unhandled one.
    pending.catch(() => {});
    const started = Date.now();
    while (!existsSync(`${LOSE_REPLY}.lost`) && Date.now() - started < 5000) await sleep(5);
    assert.ok(existsSync(`${LOSE_REPLY}.lost`), 'the hook fired');
    await gap();
    rmSync(`${LOSE_REPLY}.lost`);
    return await pending;
  } finally {
    rmSync(LOSE_REPLY, { force: true });
    rmSync(`${LOSE_REPLY}.lost`, { force: true });
  }
}

test("a reply lost after the write: the call sent again gets the first run's reply, and runs no second time", async () => {
  const redis = await server();
  const one = await app(redis.url, { table: 'lost' });
  const other = await app(redis.url, { table: 'lost' });
  const id = (await one.store.put(null, { n: 1 }))!;
  // A patch run twice would put m back to 2 over what another app server wrote in between.
  const patched = await lostReply(
    'patch',
    () => one.store.patch(id, { set: { m: 2 } }),
    async () => {
      assert.is(await other.store.patch(id, { set: { m: 99, other: 1 } }), true);
    },
  );
  assert.is(patched, true);
  assert.equal(await one.store.get(id), { n: 1, m: 99, other: 1 });
  // A login's create run twice would bring back a session "log out everywhere" ended in between.
  let created: string | null = null;
  created = await lostReply(
    'create',
    () => one.store.put(null, { device: 'new' }, { owner: 'ada' }),
    async () => {
      assert.is(await other.store.revokeAll('ada'), 1, 'the other app server ends it');
    },
  );
  assert.ok(created);
  assert.is(await one.store.get(created!), null, 'revoked stays revoked');
  assert.equal(await one.store.sessionsOf('ada'), []);
  // A revokeAll sent again answers how many the first run ended (not 0).
  await one.store.put(null, { a: 1 }, { owner: 'bob' });
  await one.store.put(null, { b: 1 }, { owner: 'bob' });
  const ended = await lostReply(
    'revokeAll',
    () => one.store.revokeAll('bob'),
    async () => {},
  );
  assert.is(ended, 2);
  assert.is(one.status().children.store.restarts, 0);
});

test('Redis out of memory (noeviction): the writes of a batch fail with StoreUnavailableError, its reads are still served', async () => {
  const redis = await server({ maxmemory: '4mb', 'maxmemory-policy': 'noeviction' });
  const sessions = await app(redis.url, { table: 'full', maxSessionBytes: 1_000_000 });
  const id = (await sessions.store.put(null, { n: 1 }))!;
  // Fill the server from outside until it refuses writes.
  await redisCommands(async (send) => {
    for (let i = 0; i < 400; i++) {
      const refused = await send('SET', `filler:${i}`, 'x'.repeat(64 * 1024)).then(
        () => false,
        () => true,
      );
      if (refused) return;
    }
  }, redis.url);
  // Redis refuses a write once it would go past maxmemory: a write of 200 KB does.
  const big = 'x'.repeat(200_000);
  const [read, write] = await Promise.allSettled([sessions.store.get(id), sessions.store.patch(id, { set: { n: 2, big } })]);
  assert.equal(read, { status: 'fulfilled', value: { n: 1 } }, 'the read shares the batch and is served');
  assert.is(write.status, 'rejected');
  assert.is(((write as PromiseRejectedResult).reason as Error).name, 'StoreUnavailableError');
  assert.match(((write as PromiseRejectedResult).reason as Error).message, /OOM/);
  assert.equal(await sessions.store.get(id), { n: 1 }, 'nothing half-written');
});

test('Redis stalled past requestTimeout (CLIENT PAUSE): calls fail with StoreUnavailableError, and the app serves again once it answers', async () => {
  const redis = await server();
  const sessions = await app(redis.url, { table: 'stalled', requestTimeout: 500 });
  const id = (await sessions.store.put(null, { n: 1 }))!;
  await redisCommands((send) => send('CLIENT', 'PAUSE', '1500', 'ALL'), redis.url);
  const error = await sessions.store.get(id).then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.is(error?.name, 'StoreUnavailableError');
  await sleep(1200);
  let back: unknown = null;
  for (let attempt = 0; attempt < 50 && back === null; attempt++) {
    back = await sessions.store.get(id).catch(() => null);
    if (back === null) await sleep(100);
  }
  assert.equal(back, { n: 1 }, 'served again (on a new connection)');
  assert.is(sessions.status().children.store.restarts, 0, 'no crash of the store actor');
});

test('table is the key prefix: clearStore and dropStore touch only their own keys; autoSetup: false refuses a store never set up', async () => {
  const redis = await server();
  const refused = await startSessionApp({ database: redis.url, table: 'never', autoSetup: false, sweepSignal: false }).catch(
    (e: unknown) => e as Error,
  );
  assert.is((refused as Error).name, 'TableNotExistsError');
  assert.match((refused as Error).message, /supervised-sessions setup/);
  await setupStore({ database: redis.url, table: 'a' });
  await setupStore({ database: redis.url, table: 'a' });
  assert.ok((await redisDump('a', redis.url)).includes('a:meta'), 'setup wrote the marker (twice: idempotent)');
  const a = await app(redis.url, { table: 'a', autoSetup: false });
  const b = await app(redis.url, { table: 'a_b' });
  const ida = (await a.store.put(null, { app: 'a' }, { owner: 'ada' }))!;
  const idb = (await b.store.put(null, { app: 'b' }, { owner: 'ada' }))!;
  assert.is(await a.store.get(idb), null, "a never sees b's session");
  assert.equal(
    (await b.store.sessionsOf('ada')).map((s) => s.data),
    [{ app: 'b' }],
  );
  await clearStore({ database: redis.url, table: 'a' });
  assert.is(await a.store.get(ida), null);
  assert.equal(await b.store.get(idb), { app: 'b' }, "b's session untouched by a's clear");
  await dropStore({ database: redis.url, table: 'a' });
  assert.equal(await redisDump('a', redis.url), [], 'nothing of a is left');
  assert.equal(await b.store.get(idb), { app: 'b' });
});

test("one sweeper at a time: a sweep finding the lock held is skipped; the sweep prunes the owners' indexes without keyspace notifications", async () => {
  const redis = await server();
  const sessions = await app(redis.url, { table: 'swept', maxAge: 1, touchAfter: 0 });
  await Promise.all(Array.from({ length: 5 }, () => sessions.store.put(null, { n: 1 }, { owner: 'grace' })));
  await redisCommands((send) => send('SET', 'swept:sweep', 'another-process', 'PX', '5000'), redis.url);
  assert.is((await sessions.sweep()).skipped, true, 'another process holds the lock');
  await redisCommands((send) => send('DEL', 'swept:sweep'), redis.url);
  await sleep(1200);
  const report = await sessions.sweep();
  assert.is(report.skipped, false);
  assert.is(report.deleted, 5, 'the five dead sessions');
  const left = await redisDump('swept', redis.url);
  assert.equal(
    left.filter((key) => key.startsWith('swept:s:') || key.startsWith('swept:o:')),
    [],
    'no session and no index left',
  );
  assert.equal(await sessions.store.sessionsOf('grace'), []);
});

test('the command line on Redis: stats prints live, dead and bytes; a password in the URL is never printed', async () => {
  // A password with the characters a URL parser would stop at.
  const redis = await server({ requirepass: 'hun?ter2#x/y@secret' });
  const url = `redis://:hun?ter2#x/y@secret@127.0.0.1:${redis.port}`;
  const sessions = await app(url, { table: 'cli' });
  for (let i = 0; i < 10; i++) await sessions.store.put(null, { i, pad: 'x'.repeat(100) });
  const out: string[] = [];
  const err: string[] = [];
  const code = await cli(['stats', '--database', url, '--table', 'cli'], { out: (line) => out.push(line), err: (line) => err.push(line) });
  assert.is(code, 0, err.join('\n'));
  const text = out.join('\n');
  assert.match(text, /live:\s+10/);
  assert.match(text, /dead:\s+0/);
  const bytes = Number(/bytes:\s+(\d+)/.exec(text)?.[1]);
  assert.ok(bytes > 10 * 100, `bytes from MEMORY USAGE: ${bytes}`);
  const wrong: string[] = [];
  const failed = await cli(['stats', '--database', `redis://:wrong-secret@127.0.0.1:${redis.port}`, '--table', 'cli'], {
    out: (line) => wrong.push(line),
    err: (line) => wrong.push(line),
  });
  assert.is(failed, 1);
  assert.match(wrong.join('\n'), /WRONGPASS|invalid/);
  for (const line of [...out, ...err, ...wrong]) {
    assert.not.ok(line.includes('ter2#x') || line.includes('wrong-secret'), line);
  }
});

test.run();
