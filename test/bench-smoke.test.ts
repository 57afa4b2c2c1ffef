// A short run of `npm run bench`: it starts, measures and reports every section.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers.ts';

test('npm run bench -- --smoke reports every section with numbers', async () => {
  const script = fileURLToPath(new URL('../bench/run.ts', import.meta.url));
  const result = await runScript(script, ['--smoke'], { timeoutMs: 180_000 });
  assert.is(result.timedOut, false);
  assert.is(result.code, 0, result.stderr);
  const report = result.stdout;
  for (const heading of ['## HTTP', '## Mailbox', '## Store', '## Sweep of a backlog', '## Owners', '## Server memory']) {
    assert.ok(report.includes(heading), `missing ${heading}`);
  }
  assert.match(report, /\| supervised-sessions \| R \| [\d,]+ \| \d+\.\d\d× \|/);
  assert.match(report, /\| supervised-sessions \| W \| [\d,]+ \| \d+\.\d\d× \|/);
  assert.match(report, /\| supervised-sessions, cookie\.maxAge set \(sliding cookie\) \| R \| [\d,]+ \|/);
  // The design's floor: bare node:http plus the mailbox hop alone, measured beside the others.
  assert.match(
    report,
    /\| bare node:http \+ the mailbox round trips alone, to an echo thread \(R one, W two; no sessions\) \| R \| [\d,]+ \| \d+\.\d\d× \|/,
  );
  assert.match(report, /\| CPU\/req ÷ bare node:http of the hops alone [^|]*\| [\d.,]+ vs [\d.,]+ µs: \d+\.\d\d× \|/);
  assert.match(
    report,
    /\| bare node:http \+ the SQLite work on the main thread \(no sessions, no hop, no group commit\) \| W \| [\d,]+ \| \d+\.\d\d× \|/,
  );
  // The performance targets, each marked from the run's own figures.
  assert.match(
    report,
    /\| CPU per request ÷ the floor \(bare-hop[^|]*\), sliding cookie, R \(≤ 1\.25×\) \| \d+\.\d\d× \| (met|\*\*missed\*\*) \|/,
  );
  assert.match(
    report,
    /\| CPU per request ÷ the floor \(bare-hop[^|]*\), sliding cookie, W \(≤ 1\.35×\) \| \d+\.\d\d× \| (met|\*\*missed\*\*) \|/,
  );
  assert.match(
    report,
    /\| RSS after the W load, ours − the floor \(bare-hop\), default node flags \(≤ 25 MiB\) \| −?[\d.,]+ MiB \| (met|\*\*missed\*\*) \|/,
  );
  // Rows a smoke run does not measure say so.
  assert.match(report, /\| PostgreSQL: ours ÷ express-session \+ connect-pg-simple, W, req\/s \(≥ 4×\) \| not measured \| — \|/);
  assert.match(report, /\| p99 of store calls during a sweep ÷ without, SQLite \(≤ 2×\) \| \d+\.\d\d× \| (met|\*\*missed\*\*) \|/);
  // Stored sessions under each flag set, each with its own ratio.
  assert.match(report, /5,000 vs 1,000 sessions, default flags: \d+\.\d\d× the memory/);
  assert.match(report, /5,000 vs 1,000 sessions, `--max-semi-space-size=2`: \d+\.\d\d× the memory/);
  assert.match(report, /\| CPU\/req with cookie\.maxAge set vs a session cookie \(target within 10 %\) \| [\d.,]+ vs [\d.,]+ µs/);
  assert.match(report, /\| the same, the two servers alone over 2 rounds \(target within 2 %\) \| [\d.,]+ vs [\d.,]+ µs: [−+][\d.,]+ % \|/);
  assert.match(report, /\| mailbox, batched \(64 callers\) \| [\d,]+ \| [\d,]+ \| [\d.]+× \|/);
  assert.match(report, /\| deleted \| 20,000 \|/);
  assert.match(report, /\| idle: ours − bare \(target ≤ 50 MiB\) \| −?[\d.,]+ MiB \| −?[\d.,]+ MiB \|/);
  assert.match(report, /\| after W: ours − bare \| −?[\d.,]+ MiB \| −?[\d.,]+ MiB \|/);
  assert.match(report, /\| after W: ours − the floor, bare-hop \(target ≤ 25 MiB\) \| −?[\d.,]+ MiB \| \|/);
  // Owners on both engines: sessionsOf, revokeAll and a login, each a figure.
  assert.match(report, /\| ours \| SQLite \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \|/);
  assert.match(report, /\| ours \| PostgreSQL \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \|/);
  assert.not.match(report, /\| supervised-sessions \| [RW] \|[^\n]*\| [1-9][\d,]* \|\n/, 'no request errors');
  assert.not.match(report, /\| bare node:http \+ the mailbox round trips[^\n]*\| [1-9][\d,]* \|\n/, 'no request errors through the hop');
  assert.not.match(
    report,
    /\| bare node:http \+ the SQLite work[^\n]*\| [1-9][\d,]* \|\n/,
    'no request errors on the main-thread SQLite server',
  );
});

test.run();
