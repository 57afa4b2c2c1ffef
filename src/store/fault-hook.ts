// Fault injection for the replay tests and drills: while the file this
// variable names exists, the first batch that carries an operation it lists
// (comma-separated) is committed, then the thread dies before replying — the
// one crash a caller cannot tell from a lost reply. The file is removed first,
// so the replay on the next incarnation goes through. Both engines' store
// owners call it after a batch committed.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

const CRASH_FILE = process.env.SUPERVISED_SESSIONS_CRASH_AFTER_COMMIT;

export function crashAfterCommit(requests: Array<{ op: string }>): void {
  if (!CRASH_FILE || !existsSync(CRASH_FILE)) return;
  const ops = readFileSync(CRASH_FILE, 'utf8').trim().split(',');
  if (!requests.some(({ op }) => ops.includes(op))) return;
  unlinkSync(CRASH_FILE);
  process.exit(70);
}

// The same for a lost reply to a COMMIT (PostgreSQL): while the file this
// variable names exists, the first write batch carrying an operation it lists
// commits, and the engine then acts as if the connection died before the
// COMMIT's reply came back. The file is removed first.
const LOST_REPLY_FILE = process.env.SUPERVISED_SESSIONS_LOSE_COMMIT_REPLY;

export function loseCommitReply(requests: Array<{ op: string }>): boolean {
  if (!LOST_REPLY_FILE || !existsSync(LOST_REPLY_FILE)) return false;
  const ops = readFileSync(LOST_REPLY_FILE, 'utf8').trim().split(',');
  if (!requests.some(({ op }) => ops.includes(op))) return false;
  unlinkSync(LOST_REPLY_FILE);
  // `<file>.lost` says it happened; the engine reconnects once the test has
  // removed it (at most 5 s later), so a test can write in the gap as another
  // app server would.
  writeFileSync(`${LOST_REPLY_FILE}.lost`, '');
  return true;
}

/** Waits (at most 5 s) until the test removed `<file>.lost` (see loseCommitReply). */
export async function afterLostReply(): Promise<void> {
  const marker = `${LOST_REPLY_FILE}.lost`;
  const end = Date.now() + 5000;
  while (existsSync(marker) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
}

// The connection lost while the server is still inside the transaction
// (PostgreSQL; a pooler, or a server that has not yet noticed): while the
// file this variable names exists, the first write batch carrying an
// operation it lists is sent, and once the server has given it a
// transaction id the engine half-closes its socket and acts as if the
// connection died; the server runs the rest of the batch and commits it.
// The file is removed first; `<file>.dropped` says it happened.
const DROP_FILE = process.env.SUPERVISED_SESSIONS_DROP_IN_TRANSACTION;

export function dropInTransaction(requests: Array<{ op: string }>): boolean {
  if (!DROP_FILE || !existsSync(DROP_FILE)) return false;
  const ops = readFileSync(DROP_FILE, 'utf8').trim().split(',');
  if (!requests.some(({ op }) => ops.includes(op))) return false;
  unlinkSync(DROP_FILE);
  writeFileSync(`${DROP_FILE}.dropped`, '');
  return true;
}
