// Fault injection for the replay tests and drills: while the file this
// variable names exists, the first batch that carries an operation it lists
// (comma-separated) is committed, then the thread dies before replying — the
// one crash a caller cannot tell from a lost reply. The file is removed first,
// so the replay on the next incarnation goes through. Both engines' store
// owners call it after a batch committed.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

const CRASH_FILE = process.env.SUPERVISED_SESSIONS_CRASH_AFTER_COMMIT;

/**
 * True, once, when the file `file` names exists and lists (comma-separated)
 * an operation of the batch: the file is removed first, and `<file>.<marker>`
 * written when a marker is given.
 */
function armed(file: string | undefined, requests: Array<{ op: string }>, marker?: string): boolean {
  if (!file || !existsSync(file)) return false;
  const ops = readFileSync(file, 'utf8').trim().split(',');
  if (!requests.some(({ op }) => ops.includes(op))) return false;
  unlinkSync(file);
  if (marker) writeFileSync(`${file}.${marker}`, '');
  return true;
}

export function crashAfterCommit(requests: Array<{ op: string }>): void {
  if (armed(CRASH_FILE, requests)) process.exit(70);
}

// The same for a lost reply to a COMMIT (PostgreSQL): while the file this
// variable names exists, the first write batch carrying an operation it lists
// commits, and the engine then acts as if the connection died before the
// COMMIT's reply came back. The file is removed first.
const LOST_REPLY_FILE = process.env.SUPERVISED_SESSIONS_LOSE_COMMIT_REPLY;

export function loseCommitReply(requests: Array<{ op: string }>): boolean {
  // `<file>.lost` says it happened; the engine reconnects once the test has
  // removed it (at most 20 s later), so a test can write in the gap as another
  // app server would, or fail the server over.
  return armed(LOST_REPLY_FILE, requests, 'lost');
}

// The same for the reply to taking an owner's cap lock (Redis Cluster): while
// the file this variable names exists and lists `capLock`, the first lock
// taken is held on the server, and the engine acts as if its reply was lost
// (it asks again). The file is removed first; `<file>.lost` says it happened.
const LOST_LOCK_FILE = process.env.SUPERVISED_SESSIONS_LOSE_LOCK_REPLY;

export function loseLockReply(): boolean {
  return armed(LOST_LOCK_FILE, [{ op: 'capLock' }], 'lost');
}

/** Waits (at most 20 s) until the test removed `<file>.lost` (see loseCommitReply). */
export async function afterLostReply(): Promise<void> {
  const marker = `${LOST_REPLY_FILE}.lost`;
  const end = Date.now() + 20_000;
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
  return armed(DROP_FILE, requests, 'dropped');
}
