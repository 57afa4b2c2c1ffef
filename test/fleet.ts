// The fleet (docs/postgres.md, docs/redis.md): three app processes, each
// with its own createHandler server, on one shared store (a PostgreSQL table,
// a Redis key prefix). A session made through one is read and patched through
// the others; a logout or a revoke-all on one is honoured by the others at
// once; one sweeps at a time; a SIGKILLed process loses nothing the others
// acknowledged. postgres-fleet.test.ts and redis-fleet.test.ts run it, each
// with what it takes to look inside its database (FleetStore).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { sleep } from './helpers.ts';

/** What the fleet's tests do inside the database, from outside every app. */
export interface FleetStore {
  /** The `database` value the three processes share. */
  database(): Promise<string>;
  /** How many stored sessions hold the data key `key`. */
  sessionsWithKey(table: string, key: string): Promise<number>;
  /** Stores `n` sessions dead for an hour (their last use two hours ago; maxAge is one hour). */
  seedDead(table: string, n: number): Promise<void>;
  /** How many stored sessions are dead. */
  countDead(table: string): Promise<number>;
}

interface Node {
  child: ChildProcess;
  url: string;
  sweeps: Array<{ deleted: number; skipped: boolean; trigger: string; durationMs: number; endedAt: number }>;
  exited: Promise<void>;
}

export function fleetSuite(store: FleetStore): void {
  const nodes: Node[] = [];
  let database = '';
  const table = `fleet_${Math.random().toString(36).slice(2, 8)}`;

  function startNode(): Promise<Node> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'fleet-node.ts'), database, table], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const node: Node = { child, url: '', sweeps: [], exited: new Promise((done) => child.once('exit', () => done())) };
      let buffered = '';
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`a fleet node did not start: ${stderr}`)), 30_000);
      child.stderr!.on('data', (chunk) => {
        stderr += chunk;
      });
      child.stdout!.on('data', (chunk) => {
        buffered += chunk;
        for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.startsWith('port ')) {
            node.url = `http://127.0.0.1:${line.slice(5)}`;
            clearTimeout(timer);
            resolve(node);
          } else if (line.startsWith('sweep ')) {
            node.sweeps.push(JSON.parse(line.slice(6)));
          }
        }
      });
    });
  }

  async function call(
    node: Node,
    path: string,
    cookie?: string,
  ): Promise<{ status: number; body: { data?: Record<string, string>; isNew?: boolean; revoked?: number }; cookie?: string }> {
    const response = await request(`${node.url}${path}`, { headers: cookie ? { cookie } : {} });
    const raw = response.headers['set-cookie'];
    const setCookie = (Array.isArray(raw) ? raw[0] : raw)?.split(';')[0];
    return { status: response.statusCode, body: (await response.body.json()) as never, cookie: setCookie };
  }

  test.before(async () => {
    database = await store.database();
    // Three processes start at once on a missing table: the schema lock lets all three in.
    nodes.push(...(await Promise.all([startNode(), startNode(), startNode()])));
  });

  test.after(async () => {
    for (const node of nodes) if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGTERM');
    await Promise.all(nodes.map((node) => node.exited));
  });

  test('a session created through one process is read and patched through the others; parallel patches through two keep both keys', async () => {
    const [a, b, c] = nodes;
    const created = await call(a, '/set?k=made&v=a');
    assert.is(created.status, 200);
    const cookie = created.cookie!;
    assert.ok(cookie);
    const read = await call(b, '/get', cookie);
    assert.equal(read.body.data, { made: 'a' });
    assert.is(read.body.isNew, false);
    await call(c, '/set?k=patched&v=c', cookie);
    await Promise.all([call(a, '/set?k=x&v=1', cookie), call(b, '/set?k=y&v=2', cookie)]);
    assert.equal((await call(a, '/get', cookie)).body.data, { made: 'a', patched: 'c', x: '1', y: '2' });
  });

  test('a logout on one process is honoured by the others at once: the old cookie gets a fresh, empty session', async () => {
    const [a, b, c] = nodes;
    const cookie = (await call(a, '/set?k=k&v=v')).cookie!;
    assert.equal((await call(c, '/get', cookie)).body.data, { k: 'v' });
    await call(b, '/logout', cookie);
    for (const node of nodes) {
      const after = await call(node, '/get', cookie);
      assert.equal(after.body.data, {});
      assert.is(after.body.isNew, true);
    }
    // A late write through another process does not bring it back.
    const late = await call(c, '/set?k=late&v=1', cookie);
    assert.ok(late.cookie && late.cookie !== cookie, 'the late write made a new session, under a new id...');
    assert.equal((await call(a, '/get', late.cookie)).body.data, { late: '1' });
    assert.equal((await call(a, '/get', cookie)).body.data, {});
    assert.is(await store.sessionsWithKey(table, 'k'), 0, '...and never revived the logged-out one');
  });

  test("revoke-all on one process ends the sessions the others serve, except the caller's own", async () => {
    const [a, b, c] = nodes;
    const cookies: string[] = [];
    for (const node of [a, b, c]) {
      const made = (await call(node, '/set?k=device&v=x')).cookie!;
      const login = await call(node, '/login?user=ada', made);
      cookies.push(login.cookie!);
    }
    const result = await call(a, '/revoke-all?user=ada', cookies[0]);
    assert.is(result.body.revoked, 2);
    assert.equal((await call(a, '/get', cookies[0])).body.data, { device: 'x' });
    assert.equal((await call(b, '/get', cookies[1])).body.data, {}, 'the session served by b is gone');
    assert.equal((await call(c, '/get', cookies[2])).body.data, {}, 'the session served by c is gone');
  });

  test('one sweeps at a time: SIGUSR2 to all three at once, one sweeps the whole backlog, the others report skipped', async () => {
    await store.seedDead(table, 20000);
    for (const node of nodes) node.sweeps.length = 0;
    for (const node of nodes) node.child.kill('SIGUSR2');
    const started = Date.now();
    while (nodes.some((node) => node.sweeps.length === 0) && Date.now() - started < 30_000) await sleep(20);
    const reports = nodes.map((node) => node.sweeps[0]);
    const swept = reports.filter((report) => !report.skipped);
    assert.is(swept.length, 1, JSON.stringify(reports));
    assert.is(swept[0].deleted, 20000);
    for (const report of reports.filter((r) => r.skipped)) assert.is(report.deleted, 0);
    // The sweeper was still sweeping when the others gave up: their reports end before its own.
    for (const report of reports.filter((r) => r.skipped)) assert.ok(report.endedAt <= swept[0].endedAt);
    assert.is(await store.countDead(table), 0);
  });

  test('SIGKILL of one process under load loses nothing the others (or it) acknowledged', async () => {
    const [a, b, c] = nodes;
    const sessions = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await call(nodes[i % 3], `/set?k=n&v=0`)).cookie!));
    const acked = new Map<string, number>(sessions.map((cookie) => [cookie, 0]));
    let running = true;
    const loops = sessions.map(async (cookie, i) => {
      // Each session is written through a process of its own; b is the one that dies.
      const node = [a, b, c][i % 3];
      for (let v = 1; running && v < 2000; v++) {
        try {
          const reply = await call(node, `/set?k=n&v=${v}`, cookie);
          if (reply.status === 200) acked.set(cookie, v);
        } catch {
          return; // b went away mid-request: that write was never acknowledged
        }
      }
    });
    await sleep(600);
    b.child.kill('SIGKILL');
    await b.exited;
    await sleep(400);
    running = false;
    await Promise.all(loops);
    for (const [cookie, v] of acked) {
      const stored = Number((await call(a, '/get', cookie)).body.data!.n);
      assert.ok(stored >= v, `acknowledged ${v}, stored ${stored}`);
    }
    assert.ok([...acked.values()].filter((v) => v > 5).length >= 20, 'the load ran');
  });
}
