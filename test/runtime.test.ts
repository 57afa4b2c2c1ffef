import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import type { ChildSpec } from '../src/runtime/child.ts';
import { Supervisor } from '../src/runtime/supervisor.ts';
import { MailboxClient } from '../src/runtime/mailbox-client.ts';
import { mailboxChild } from '../src/runtime/mailbox-child.ts';
import { fromWire } from '../src/errors.ts';
import { MessageChannel } from 'node:worker_threads';
import { serveMailboxAsync, type Outcome, type Request } from '../src/runtime/mailbox-server.ts';
import { READS, sessionsOf, type Op } from '../src/store/protocol.ts';
import { runScript, sleep, until } from './helpers.ts';

const fixture = new URL('./fixtures/actor.ts', import.meta.url);

class PoisonError extends Error {}
class TimeoutError extends Error {}
class ClosedError extends Error {}

class FullError extends Error {}

function client(
  timeoutMs = 5000,
  maxPending?: number,
  hooks: Pick<ConstructorParameters<typeof MailboxClient>[0], 'onSettle' | 'onBatch'> = {},
) {
  return new MailboxClient({
    timeoutMs,
    maxPending,
    ...hooks,
    errors: {
      timeout: (op, ms) => new TimeoutError(`${op} timed out after ${ms} ms`),
      full: (op, max) => new FullError(`${op}: ${max} waiting`),
      poison: (op) => new PoisonError(`${op} was in flight at two crashes`),
      closed: (reason) => new ClosedError(reason),
      decode: fromWire,
    },
  });
}

interface Rig {
  supervisor: Supervisor;
  mailbox: MailboxClient;
  restarts: Array<{ child: string; reason: Error; restarts: number }>;
}

async function rig(
  options: {
    intensity?: number;
    periodMs?: number;
    shutdownTimeoutMs?: number;
    workerData?: Record<string, unknown>;
    timeoutMs?: number;
    maxPending?: number;
    maxOldGenerationSizeMb?: number;
  } = {},
): Promise<Rig> {
  const mailbox = client(options.timeoutMs, options.maxPending);
  const supervisor = new Supervisor({
    intensity: options.intensity ?? 3,
    periodMs: options.periodMs ?? 5000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 2000,
    children: [
      mailboxChild({
        name: 'actor',
        filename: fixture,
        workerData: options.workerData ?? {},
        client: mailbox,
        resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
      }),
    ],
  });
  const restarts: Rig['restarts'] = [];
  supervisor.on('restart', (event) => restarts.push(event));
  await supervisor.start();
  return { supervisor, mailbox, restarts };
}

test('the mailbox is bounded: past maxPending a call fails at once, also while the actor is down', async () => {
  const { supervisor, mailbox } = await rig({ maxPending: 5 });
  try {
    const calls = Array.from({ length: 8 }, (_, i) =>
      mailbox.call('echo', i).then(
        (v) => ['ok', v],
        (e: unknown) => ['err', e],
      ),
    );
    const results = await Promise.all(calls);
    assert.equal(
      results.slice(0, 5).map((r) => r[1]),
      [0, 1, 2, 3, 4],
    );
    for (const [kind, error] of results.slice(5)) {
      assert.is(kind, 'err');
      assert.instance(error, FullError);
    }
    // While the actor restarts, queued calls are bounded the same way, then replayed.
    await supervisor.kill('actor');
    const queued = Array.from({ length: 7 }, (_, i) =>
      mailbox.call('echo', i).then(
        () => 'ok',
        (e: unknown) => (e instanceof FullError ? 'full' : String(e)),
      ),
    );
    assert.is(mailbox.pending, 5);
    assert.equal(await Promise.all(queued), ['ok', 'ok', 'ok', 'ok', 'ok', 'full', 'full']);
    assert.is(mailbox.pending, 0);
    assert.is(await mailbox.call('echo', 'after'), 'after', 'accepted again once the queue drained');
  } finally {
    await supervisor.stop();
  }
});

test('hooks that throw (a metrics sink gone wrong) never stop a call from settling', async () => {
  let settled = 0;
  let batches = 0;
  const mailbox = client(5000, 2, {
    onSettle: () => {
      settled++;
      throw new Error('sink broken');
    },
    onBatch: () => {
      batches++;
      throw new Error('sink broken');
    },
  });
  const supervisor = new Supervisor({
    intensity: 3,
    periodMs: 5000,
    shutdownTimeoutMs: 2000,
    children: [mailboxChild({ name: 'actor', filename: fixture, workerData: {}, client: mailbox })],
  });
  await supervisor.start();
  try {
    const results = await Promise.allSettled([mailbox.call('echo', 1), mailbox.call('fail', 'x'), mailbox.call('echo', 3)]);
    assert.equal(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'rejected'],
    );
    assert.is((results[0] as PromiseFulfilledResult<unknown>).value, 1);
    assert.instance((results[2] as PromiseRejectedResult).reason, FullError, 'refused at once, and still rejected');
    assert.is(settled, 3);
    assert.ok(batches >= 1);
    assert.is(mailbox.pending, 0);
  } finally {
    await supervisor.stop();
  }
});

test('a request gets its reply; errors cross the port as their class', async () => {
  const { supervisor, mailbox } = await rig();
  try {
    assert.equal(await mailbox.call('echo', { a: [1, 'two'] }), { a: [1, 'two'] });
    const error = await mailbox.call('fail', 'x').catch((e: unknown) => e);
    assert.instance(error, TypeError);
    assert.is((error as Error).message, 'refused: x');
  } finally {
    await supervisor.stop();
  }
});

test('requests made in one event-loop turn travel as one message', async () => {
  const { supervisor, mailbox } = await rig();
  try {
    const sizes = await Promise.all(Array.from({ length: 25 }, () => mailbox.call('batch-size', null)));
    assert.equal(sizes, Array(25).fill(25));
  } finally {
    await supervisor.stop();
  }
});

for (const [op, why] of [
  ['exit', 'process.exit(1)'],
  ['throw-async', 'an asynchronous throw'],
  ['oom', 'running out of memory'],
] as const) {
  test(`a child that crashes by ${why} is restarted with fresh module state`, async () => {
    // A small heap: how long filling the default one takes depends on the machine's memory.
    const { supervisor, mailbox, restarts } = await rig({ workerData: {}, maxOldGenerationSizeMb: op === 'oom' ? 64 : undefined });
    try {
      assert.is(await mailbox.call('count', null), 1);
      assert.is(await mailbox.call('count', null), 2);
      const before = supervisor.children().actor.threadId;
      if (op === 'exit') {
        // The exit op never answers: it is replayed once, crashes again and is failed as poison.
        const error = await mailbox.call('exit', null).catch((e: unknown) => e);
        assert.instance(error, PoisonError);
      } else {
        await mailbox.call(op, null).catch(() => {});
      }
      await until(() => restarts.length >= 1 && supervisor.children().actor.state === 'running', 10000, 'restart');
      assert.is(await mailbox.call('count', null), 1, 'the counter starts over');
      assert.is.not(supervisor.children().actor.threadId, before);
      assert.ok(restarts[0].reason instanceof Error);
      assert.is(restarts[0].child, 'actor');
      if (op === 'oom') assert.match(restarts[0].reason.message, /memory/i);
      if (op === 'throw-async') assert.match(restarts[0].reason.message, /fixture async throw/);
    } finally {
      await supervisor.stop();
    }
  });
}

test('intensity 3 in 5 s: the 4th crash inside the window gives up loudly', async () => {
  const { supervisor, mailbox, restarts } = await rig({ intensity: 3, periodMs: 5000 });
  const failures: Error[] = [];
  supervisor.on('failed', (error) => failures.push(error));
  for (let i = 1; i <= 3; i++) {
    await supervisor.kill('actor');
    assert.is(supervisor.state, 'running', `after kill ${i}`);
    await until(() => supervisor.children().actor.state === 'running', 5000, `restart ${i}`);
    assert.is(supervisor.children().actor.restarts, i);
  }
  await supervisor.kill('actor');
  assert.is(supervisor.state, 'failed');
  assert.is(failures.length, 1);
  assert.match(failures[0].message, /more than 3 restarts within 5 s/);
  assert.is(restarts.length, 3, 'the 4th crash is not restarted');
  await until(() => supervisor.children().actor.state === 'failed', 2000, 'child failed');
  assert.is(supervisor.children().actor.threadId, null);
  await supervisor.stop();
  assert.is(supervisor.state, 'failed', 'stop on a failed supervisor keeps it failed');
  mailbox.close('failed');
});

test('crashes spread wider than the period do not give up', async () => {
  const { supervisor } = await rig({ intensity: 1, periodMs: 300 });
  try {
    for (let i = 1; i <= 4; i++) {
      await supervisor.kill('actor');
      await until(() => supervisor.children().actor.state === 'running', 5000, `restart ${i}`);
      await sleep(350);
    }
    assert.is(supervisor.state, 'running');
    assert.is(supervisor.children().actor.restarts, 4);
  } finally {
    await supervisor.stop();
  }
});

test('children start in order and stop in reverse order', async () => {
  const events: string[] = [];
  const mailboxes = [client(), client()];
  const spec = (name: string, index: number): ChildSpec => {
    const inner = mailboxChild({ name, filename: fixture, workerData: {}, client: mailboxes[index] });
    return {
      name,
      async start() {
        const incarnation = await inner.start();
        events.push(`started ${name}`);
        return {
          ...incarnation,
          exited: incarnation.exited,
          kill: incarnation.kill,
          async stop(ms: number) {
            events.push(`stopping ${name}`);
            const reason = await incarnation.stop(ms);
            events.push(`stopped ${name} (${reason.kind})`);
            return reason;
          },
        };
      },
    };
  };
  const supervisor = new Supervisor({
    intensity: 3,
    periodMs: 5000,
    shutdownTimeoutMs: 2000,
    children: [spec('first', 0), spec('second', 1)],
  });
  await supervisor.start();
  assert.equal(supervisor.children().first.state, 'running');
  assert.equal(supervisor.children().second.state, 'running');
  await supervisor.stop();
  assert.equal(events, [
    'started first',
    'started second',
    'stopping second',
    'stopped second (shutdown)',
    'stopping first',
    'stopped first (shutdown)',
  ]);
  assert.is(supervisor.state, 'stopped');
});

test('a child that fails to start aborts the start and stops the started ones', async () => {
  const ok = client();
  const bad = client();
  const supervisor = new Supervisor({
    intensity: 3,
    periodMs: 5000,
    shutdownTimeoutMs: 2000,
    children: [
      mailboxChild({ name: 'good', filename: fixture, workerData: {}, client: ok }),
      mailboxChild({ name: 'bad', filename: fixture, workerData: { failStart: true }, client: bad }),
    ],
  });
  const error = await supervisor.start().catch((e: unknown) => e);
  assert.instance(error, Error);
  assert.is((error as Error).message, 'fixture refuses to start');
  assert.is(supervisor.state, 'stopped');
  assert.is(supervisor.children().good.state, 'stopped');
});

test('a hung child is terminated after shutdownTimeout', async () => {
  const { supervisor, mailbox } = await rig({ shutdownTimeoutMs: 300, workerData: { hangOnStop: true } });
  assert.is(await mailbox.call('count', null), 1);
  const started = Date.now();
  await supervisor.stop();
  const took = Date.now() - started;
  assert.ok(took >= 290, `stop waited the shutdown time (${took} ms)`);
  assert.ok(took < 3000, `then terminated the child (${took} ms)`);
  assert.is(supervisor.children().actor.state, 'stopped');
});

test('a request past its deadline rejects with the timeout error', async () => {
  const { supervisor, mailbox } = await rig({ timeoutMs: 200, shutdownTimeoutMs: 200 });
  const error = await mailbox.call('hang', null).catch((e: unknown) => e);
  assert.instance(error, TimeoutError);
  assert.match((error as Error).message, /hang timed out after 200 ms/);
  await supervisor.stop();
});

test('20 callers, 2,000 requests, 5 kills: every request resolves with the right answer', async () => {
  const { supervisor, mailbox, restarts } = await rig({ intensity: 10, periodMs: 5000 });
  try {
    let done = 0;
    const callers = Array.from({ length: 20 }, async (_, caller) => {
      for (let i = 0; i < 100; i++) {
        const value = `${caller}:${i}`;
        assert.is(await mailbox.call('echo', value), value);
        done++;
      }
    });
    const killer = (async () => {
      for (let k = 0; k < 5; k++) {
        // Fresh progress since the last restart: the suspects of the last
        // crash (replayed first, one at a time) have all been answered, so
        // this kill is not a second consecutive crash for any of them.
        const since = done;
        await until(() => done >= since + 150 || done === 2000, 20000, 'progress');
        await until(() => supervisor.children().actor.state === 'running', 5000, 'running');
        await supervisor.kill('actor');
      }
    })();
    await Promise.all([...callers, killer]);
    assert.is(done, 2000);
    assert.is(restarts.length, 5);
    assert.is(supervisor.state, 'running');
  } finally {
    await supervisor.stop();
  }
});

test('a poison request is failed after two crashes; the others still succeed', async () => {
  const { supervisor, mailbox } = await rig({ intensity: 10 });
  try {
    const others = Array.from({ length: 30 }, (_, i) => mailbox.call('echo', i));
    const poison = mailbox.call('poison', null).catch((e: unknown) => e);
    const after = Array.from({ length: 30 }, (_, i) => mailbox.call('echo', 100 + i));
    assert.instance(await poison, PoisonError);
    assert.equal(
      await Promise.all(others),
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.equal(
      await Promise.all(after),
      Array.from({ length: 30 }, (_, i) => 100 + i),
    );
    assert.is(supervisor.children().actor.restarts, 2);
  } finally {
    await supervisor.stop();
  }
});

/** A gate a test opens by hand. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * serveMailboxAsync with a read lane, over a real MessageChannel: each batch
 * waits for the gate its first call names (args[1]), and the log says what
 * ran on which lane, in order.
 */
function laneRig() {
  const { port1, port2 } = new MessageChannel();
  const gates = new Map<string, ReturnType<typeof gate>>();
  const gateOf = (name: string) => {
    const known = gates.get(name);
    if (known) return known;
    const made = gate();
    gates.set(name, made);
    return made;
  };
  const log: string[] = [];
  const run =
    (lane: string) =>
    async (requests: Request[]): Promise<Outcome[]> => {
      const names = requests.map(({ op, args }) => `${op} ${(args as string[])[0] ?? ''}`.trim());
      log.push(`${lane} start: ${names.join(', ')}`);
      for (const { args } of requests) {
        const held = (args as Array<string | null>)[1];
        if (held) await gateOf(held).opened;
      }
      log.push(`${lane} end: ${names.join(', ')}`);
      return names.map((value) => ({ ok: true, value }));
    };
  serveMailboxAsync(port1, run('batch'), undefined, {
    sessionsOf,
    reads: ({ op }) => READS.has(op),
    run: run('reads'),
  });
  const mailbox = client();
  mailbox.attach(port2);
  const settled = new Set<string>();
  // args[1] names the gate a call waits for (a renew's is its new id).
  const call = (op: Op, sid: string | null, held?: string, more: unknown[] = []) => {
    const name = `${op} ${sid ?? ''}`.trim();
    return mailbox.call(op, sid === null ? [] : [sid, held ?? null, ...more]).then((value) => {
      settled.add(name);
      return value;
    });
  };
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return {
    log,
    settled,
    call,
    /** Where in the log a line of one call is (a batch names its calls; messages may cross the channel a turn apart, so batches vary). */
    at(line: string) {
      const [lane, name] = line.split(': ');
      const i = log.findIndex(
        (entry) =>
          entry.startsWith(`${lane}: `) &&
          entry
            .slice(lane.length + 2)
            .split(', ')
            .includes(name),
      );
      assert.ok(i >= 0, `${line} in ${log.join(' | ')}`);
      return i;
    },
    started: (line: string) => until(() => log.includes(line), 2000, line),
    open: (name: string) => gateOf(name).open(),
    turn,
    close() {
      port1.close();
      port2.close();
    },
  };
}

test('a read lane: reads of other sessions pass a batch in flight; calls on one session keep their order', async () => {
  const rig = laneRig();
  try {
    const { started } = rig;
    // A write batch in flight, held.
    const first = rig.call('patch', 'A', 'first');
    await started('batch start: patch A');
    // A read of another session goes on the read lane and is answered while
    // the batch is held; a read of the session it writes waits for it.
    const readB = rig.call('get', 'B');
    const readA = rig.call('get', 'A');
    assert.is(await readB, 'get B');
    await sleep(20);
    assert.not.ok(rig.settled.has('get A'), 'a read of a session being written waited for the write');
    // A read on the read lane (held), then a write of its session: the
    // write's batch waits for the read. (Each call is sent a turn after the
    // one before; where a message lands in a batch may vary, so the log is
    // read by call, not by batch.)
    const readC = rig.call('get', 'C', 'readC');
    await started('reads start: get C');
    const writeC = rig.call('patch', 'C');
    await rig.turn();
    rig.open('first');
    await first;
    assert.is(await readA, 'get A');
    await sleep(20);
    assert.not.ok(rig.settled.has('patch C'), 'the write of a session being read waited for the read');
    rig.open('readC');
    await Promise.all([readC, writeC]);
    const { at } = rig;
    assert.ok(at('reads end: get B') < at('batch end: patch A'), rig.log.join(' | '));
    assert.ok(at('batch end: patch A') < at('batch start: get A'), rig.log.join(' | '));
    assert.ok(at('reads end: get C') < at('batch start: patch C'), rig.log.join(' | '));
    // A write on many sessions (an owner's) in flight: every read waits for it.
    const wide = rig.call('revokeAll', 'owner', 'wide');
    await started('batch start: revokeAll owner');
    const readD = rig.call('get', 'D');
    await sleep(20);
    assert.not.ok(rig.settled.has('get D'), "a read waited for the owner's write");
    rig.open('wide');
    await Promise.all([wide, readD]);
    assert.ok(at('batch end: revokeAll owner') < at('batch start: get D'), rig.log.join(' | '));
    // Idle, a read takes the batch lane as before.
    assert.is(await rig.call('load', 'E'), 'load E');
    assert.ok(at('batch start: load E') >= 0);
  } finally {
    rig.close();
  }
});

test('a read lane: a call of any kind on a session being read waits for that read; a renew holds both ids; a write that gives an owner holds every read', async () => {
  const rig = laneRig();
  const { at } = rig;
  try {
    // A read of K on the read lane (held) while a batch is out; that batch ends.
    const { started } = rig;
    const busy = rig.call('patch', 'X', 'x');
    await started('batch start: patch X');
    const readK = rig.call('get', 'K', 'k');
    await started('reads start: get K');
    rig.open('x');
    await busy;
    // The batch lane is idle: a touch of K (a write to an engine) and a load of K wait for the read all the same.
    const loadK = rig.call('load', 'K');
    await sleep(30);
    assert.not.ok(rig.settled.has('load K'), 'a read of K on the batch lane waited for the read of K');
    const touchK = rig.call('touchKey', 'K');
    await sleep(30);
    assert.not.ok(rig.settled.has('touchKey K'), 'a touch of K waited for the read of K');
    rig.open('k');
    await Promise.all([readK, touchK, loadK]);
    assert.ok(at('reads end: get K') < at('batch start: touchKey K'), rig.log.join(' | '));
    assert.ok(at('reads end: get K') < at('batch start: load K'), rig.log.join(' | '));
    // A renew of A to B out: a read of B (the new id) waits for it.
    const renew = rig.call('renew', 'A', 'B');
    await started('batch start: renew A');
    const readB = rig.call('get', 'B');
    const readOther = rig.call('get', 'O');
    assert.is(await readOther, 'get O');
    await sleep(30);
    assert.not.ok(rig.settled.has('get B'), "a read of the renew's new id waited for it");
    rig.open('B');
    await Promise.all([renew, readB]);
    assert.ok(at('batch end: renew A') < at('batch start: get B'), rig.log.join(' | '));
    // A write that gives an owner (under a cap it may end that owner's other sessions) out: every read waits.
    const login = rig.call('put', 'L', 'login', ['{}', 'ada']);
    await started('batch start: put L');
    const readP = rig.call('get', 'P');
    await sleep(30);
    assert.not.ok(rig.settled.has('get P'), 'a read waited for the write that gives an owner');
    rig.open('login');
    await Promise.all([login, readP]);
    assert.ok(at('batch end: put L') < at('batch start: get P'), rig.log.join(' | '));
  } finally {
    rig.close();
  }
});

test('after stop() the process exits by itself (no leaked threads, timers, ports)', async () => {
  const script = fileURLToPath(new URL('./fixtures/runtime-exit.ts', import.meta.url));
  const result = await runScript(script, [], { timeoutMs: 15000 });
  assert.is(result.timedOut, false, `the process hung: ${result.stderr}`);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /stopped after 3 calls and 1 restart/);
});

test.run();
