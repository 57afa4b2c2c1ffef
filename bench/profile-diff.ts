// node bench/profile-diff.ts A.txt B.txt [--top=30]
// Two saved outputs of `npm run bench:profile -- --json` (for instance the
// bare-hop server and ours): the main thread's self time per request served
// (SERVED: logins, warm-up and measurement, the whole life the profile
// covers), frame by frame, sorted by what B spends more than A.
import { readFileSync } from 'node:fs';

const [fileA, fileB] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
if (!fileA || !fileB) throw new Error('usage: node bench/profile-diff.ts A.txt B.txt [--top=30]');
const top = Number(process.argv.find((arg) => arg.startsWith('--top='))?.slice(6) ?? 30);

function perRequest(file: string): { served: number; frames: Map<string, number> } {
  const text = readFileSync(file, 'utf8');
  const served = Number(/^SERVED (\d+)$/m.exec(text)?.[1]);
  // The first FRAMES line is the main thread's (the first profile written).
  const json = /^FRAMES (.*)$/m.exec(text)?.[1];
  if (!served || !json) throw new Error(`${file}: not an output of npm run bench:profile -- --json`);
  const frames = new Map<string, number>();
  for (const { frame, ms } of JSON.parse(json) as Array<{ frame: string; ms: number }>) {
    // One row per function and file, whatever the line.
    const key = frame.replace(/:\d+$/, '');
    frames.set(key, (frames.get(key) ?? 0) + (ms * 1000) / served);
  }
  return { served, frames };
}

const a = perRequest(fileA);
const b = perRequest(fileB);
const sum = (frames: Map<string, number>) => [...frames.values()].reduce((total, value) => total + value, 0);
console.log(
  `main thread µs per request served: A ${sum(a.frames).toFixed(1)} (${a.served} requests), B ${sum(b.frames).toFixed(1)} (${b.served} requests)`,
);
console.log('| frame | A µs/req | B µs/req | B − A |');
console.log('| --- | ---: | ---: | ---: |');
const keys = [...new Set([...a.frames.keys(), ...b.frames.keys()])].sort(
  (k1, k2) => (b.frames.get(k2) ?? 0) - (a.frames.get(k2) ?? 0) - ((b.frames.get(k1) ?? 0) - (a.frames.get(k1) ?? 0)),
);
for (const key of keys.slice(0, top)) {
  const va = a.frames.get(key) ?? 0;
  const vb = b.frames.get(key) ?? 0;
  console.log(
    `| \`${key.replace(/file:\/\/\S*?\/dist\//, 'dist/')}\` | ${va.toFixed(2)} | ${vb.toFixed(2)} | ${vb - va >= 0 ? '+' : '−'}${Math.abs(vb - va).toFixed(2)} |`,
  );
}
