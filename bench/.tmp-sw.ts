import { sweepBenchmark } from './.tmp-sweep2.ts';
import { scratch } from './lib.ts';
const s = scratch();
console.log(await sweepBenchmark({ dir: s.dir, dead: Number(process.argv[2] ?? 1_000_000), live: 100_000, baselineSeconds: 3 }));
s.remove();
