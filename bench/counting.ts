// node bench/counting.ts — what the app's counting costs per store call, on
// its own: Metrics.call (a successful call: its count and its duration) and
// Metrics.batch, a million times each, in nanoseconds per call. The HTTP
// benchmark's "instruments on vs off" rows measure the same thing end to end,
// where it is smaller than the machine's noise.
import { Metrics } from '../src/metrics.ts';

const metrics = new Metrics();
const ops = ['load', 'patch', 'get', 'create'];
const N = 1_000_000;
for (let warm = 0; warm < 100_000; warm++) metrics.call(ops[warm & 3], performance.now(), null);
let started = process.hrtime.bigint();
for (let i = 0; i < N; i++) metrics.call(ops[i & 3], performance.now(), null);
const call = Number(process.hrtime.bigint() - started) / N;
started = process.hrtime.bigint();
for (let i = 0; i < N; i++) metrics.batch((i & 15) + 1);
const batch = Number(process.hrtime.bigint() - started) / N;
started = process.hrtime.bigint();
for (let i = 0; i < N; i++) performance.now();
const clock = Number(process.hrtime.bigint() - started) / N;
console.log(JSON.stringify({ callNs: Math.round(call), batchNs: Math.round(batch), performanceNowNs: Math.round(clock) }));
