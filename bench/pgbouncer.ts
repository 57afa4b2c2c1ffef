// What ?pgbouncer=true costs (docs/postgres.md, PgBouncer): the same store
// load — 32 concurrent callers, each a get then a patch of its own session —
// on one PostgreSQL server (test/postgres-server.ts), three ways, alternated
// over two rounds: direct with named prepared statements (the default),
// direct with ?pgbouncer=true (every statement unnamed: the parse and plan
// cost alone), and through PgBouncer in transaction mode with ?pgbouncer=true.
// Prints calls per second and this process's CPU time per call (the store's
// worker thread included). Run: node bench/pgbouncer.ts [--seconds N]
import { startSessionApp } from '../src/index.ts';
import { startPgBouncer, startPostgres } from '../test/postgres-server.ts';

const at = process.argv.indexOf('--seconds');
const seconds = at === -1 ? 4 : Number(process.argv[at + 1]);
const server = await startPostgres();
const bouncer = await startPgBouncer(server);
const ways: Array<[string, string]> = [
  ['direct, named statements', server.url],
  ['direct, ?pgbouncer=true', `${server.url}?pgbouncer=true`],
  ['PgBouncer (transaction), ?pgbouncer=true', bouncer.urlOf('postgres')],
];
const results = new Map<string, Array<{ perSecond: number; cpuUs: number }>>();
try {
  for (let round = 0; round < 2; round++) {
    for (const [name, database] of ways) {
      const app = await startSessionApp({ database, table: `bench_bouncer_${round}`, cleanerInterval: 3600, sweepSignal: false });
      const ids = (await Promise.all(Array.from({ length: 32 }, () => app.store.put(null, { n: 0 })))) as string[];
      let calls = 0;
      const cpu = process.cpuUsage();
      const started = performance.now();
      const end = started + seconds * 1000;
      await Promise.all(
        ids.map(async (id) => {
          for (let n = 1; performance.now() < end && n < 1_000_000; n++) {
            await app.store.get(id);
            await app.store.patch(id, { set: { n } });
            calls += 2;
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const one = { perSecond: calls / elapsed, cpuUs: (used.user + used.system) / calls };
      results.set(name, [...(results.get(name) ?? []), one]);
      await app.stop();
    }
  }
} finally {
  bouncer.destroy();
  server.destroy();
}
const base = results.get(ways[0][0])!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`| way | calls/s | vs direct, named | app CPU µs/call |`);
console.log(`| --- | ---: | ---: | ---: |`);
for (const [name] of ways) {
  const rows = results.get(name)!;
  const rate = mean(rows.map((r) => r.perSecond));
  console.log(
    `| ${name} | ${rate.toFixed(0)} | ${(rate / mean(base.map((r) => r.perSecond))).toFixed(2)}× | ${mean(rows.map((r) => r.cpuUs)).toFixed(1)} |`,
  );
}
