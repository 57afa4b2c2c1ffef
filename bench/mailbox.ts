// Mailbox micro-benchmark: round-trip latency and throughput with and without
// batching, each as a ratio to a raw MessagePort ping-pong in the same run.
import { MessageChannel, Worker } from 'node:worker_threads';
import { MailboxClient } from '../src/runtime/mailbox-client.ts';
import { mailboxChild } from '../src/runtime/mailbox-child.ts';
import { Supervisor } from '../src/runtime/supervisor.ts';
import { fromWire } from '../src/errors.ts';
import { summarize } from './lib.ts';

const WORKER = new URL('./echo-worker.ts', import.meta.url);

export interface MailboxRow {
  name: string;
  calls: number;
  perSecond: number;
  p50: number;
  p99: number;
  ratio: number;
  cpuPerCall?: number;
}

/** This process's CPU µs (all its threads) per call over `body`. */
async function cpuPer<T>(calls: number, body: () => Promise<T>): Promise<[T, number]> {
  const before = process.cpuUsage();
  const result = await body();
  const used = process.cpuUsage(before);
  return [result, (used.user + used.system) / calls];
}

/** The same ping-pong over a SharedArrayBuffer: Atomics.waitAsync here, Atomics.wait in the worker. */
async function atomicsPingPong(count: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const shared = new SharedArrayBuffer(8);
  const slots = new Int32Array(shared);
  const worker = new Worker(WORKER, { workerData: { mode: 'atomics', shared } });
  await new Promise((resolve) => worker.once('message', resolve));
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 1; i <= count; i++) {
    const t0 = performance.now();
    Atomics.store(slots, 0, i);
    Atomics.notify(slots, 0);
    const wait = Atomics.waitAsync(slots, 1, i - 1);
    if (wait.async) await wait.value;
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  Atomics.store(slots, 0, -1);
  Atomics.notify(slots, 0);
  await worker.terminate();
  return { perSecond: count / seconds, ...summarize(latencies) };
}

async function rawPingPong(count: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER, { workerData: { mode: 'raw', port: port2 }, transferList: [port2] });
  await new Promise((resolve) => worker.once('message', resolve));
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await new Promise((resolve) => {
      port1.once('message', resolve);
      port1.postMessage(i);
    });
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  port1.close();
  await worker.terminate();
  return { perSecond: count / seconds, ...summarize(latencies) };
}

export async function mailboxBenchmark(options: { calls: number; concurrency: number }): Promise<MailboxRow[]> {
  const [raw, rawCpu] = await cpuPer(options.calls, () => rawPingPong(options.calls));
  const [atomics, atomicsCpu] = await cpuPer(options.calls, () => atomicsPingPong(options.calls));
  const client = new MailboxClient({
    timeoutMs: 30_000,
    errors: {
      timeout: () => new Error('timeout'),
      full: () => new Error('full'),
      poison: () => new Error('poison'),
      closed: () => new Error('closed'),
      decode: fromWire,
    },
  });
  const supervisor = new Supervisor({
    intensity: 3,
    periodMs: 5000,
    shutdownTimeoutMs: 2000,
    children: [mailboxChild({ name: 'echo', filename: WORKER, workerData: { mode: 'mailbox' }, client })],
  });
  await supervisor.start();
  try {
    // Unbatched: one caller, each call awaited before the next (one request per message).
    const single: number[] = [];
    let started = performance.now();
    for (let i = 0; i < options.calls; i++) {
      const t0 = performance.now();
      await client.call('echo', i);
      single.push(performance.now() - t0);
    }
    const singleRate = options.calls / ((performance.now() - started) / 1000);
    // Batched: many concurrent callers; calls of one event-loop turn share a message.
    const batched: number[] = [];
    const total = options.calls * 10;
    let issued = 0;
    started = performance.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (issued < total) {
          issued++;
          const t0 = performance.now();
          await client.call('echo', issued);
          batched.push(performance.now() - t0);
        }
      }),
    );
    const batchedRate = total / ((performance.now() - started) / 1000);
    const s = summarize(single);
    const b = summarize(batched);
    return [
      {
        name: 'raw MessagePort ping-pong',
        calls: options.calls,
        perSecond: raw.perSecond,
        p50: raw.p50,
        p99: raw.p99,
        ratio: 1,
        cpuPerCall: rawCpu,
      },
      {
        name: 'SharedArrayBuffer + Atomics ping-pong (waitAsync / wait)',
        calls: options.calls,
        perSecond: atomics.perSecond,
        p50: atomics.p50,
        p99: atomics.p99,
        ratio: atomics.perSecond / raw.perSecond,
        cpuPerCall: atomicsCpu,
      },
      {
        name: 'mailbox, unbatched (1 caller)',
        calls: options.calls,
        perSecond: singleRate,
        p50: s.p50,
        p99: s.p99,
        ratio: singleRate / raw.perSecond,
      },
      {
        name: `mailbox, batched (${options.concurrency} callers)`,
        calls: total,
        perSecond: batchedRate,
        p50: b.p50,
        p99: b.p99,
        ratio: batchedRate / raw.perSecond,
      },
    ];
  } finally {
    await supervisor.stop();
    client.close('stopped');
  }
}
