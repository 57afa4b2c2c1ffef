// node bench/without-rowid.ts [rows]
// A lever of issue 16, measured on its own: the session table as it is (a
// rowid table whose primary key, the id's SHA-256 digest, is a separate
// index) against a WITHOUT ROWID table clustered on that digest. The same
// columns, indexes and pragmas as the store actor's connection (WAL,
// synchronous=NORMAL, busy_timeout, wal_autocheckpoint = 16384: the cleaner
// checkpoints in the store, so the owner's commits do not); the owner's
// statements: a read by digest, and a batch of 20 read-modify-writes in one
// transaction (group commit), on 1,000 hot sessions among `rows`. CPU µs per
// operation; three rounds, the two layouts taking turns in each.
import { hash, randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { scratch } from './lib.ts';

const rows = Number(process.argv[2] ?? 100_000);
const HOT = 1000;
const READS = 200_000;
const BATCH = 20;

function layout(file: string, withoutRowid: boolean): { db: DatabaseSync; keys: Buffer[] } {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16384;');
  db.exec(`CREATE TABLE session (sid_hash BLOB NOT NULL PRIMARY KEY, data TEXT NOT NULL, created_at INTEGER NOT NULL, touched_at INTEGER NOT NULL, owner TEXT)${withoutRowid ? ' WITHOUT ROWID' : ''};
    CREATE INDEX session_touched_at ON session (touched_at);
    CREATE INDEX session_created_at ON session (created_at);
    CREATE INDEX session_owner ON session (owner, touched_at) WHERE owner IS NOT NULL;`);
  const insert = db.prepare('INSERT INTO session (sid_hash, data, created_at, touched_at) VALUES (?, ?, ?, ?)');
  const keys: Buffer[] = [];
  const now = Date.now();
  db.exec('BEGIN');
  for (let i = 0; i < rows; i++) {
    const key = hash('sha256', randomBytes(32).toString('base64url'), 'buffer');
    if (i < HOT) keys.push(key);
    insert.run(key, `{"user":"someone","n":${i}}`, now, now);
  }
  db.exec('COMMIT');
  return { db, keys };
}

const cpu = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return used.user + used.system;
};

const temp = scratch('bench-without-rowid-');
try {
  console.log(`${rows.toLocaleString('en-US')} rows, ${HOT} hot; CPU µs per operation`);
  console.log('| layout | round | read (one per transaction) | read-modify-write (20 per transaction) |');
  console.log('| --- | ---: | ---: | ---: |');
  const layouts = [false, true].map((withoutRowid) => {
    const { db, keys } = layout(`${temp.dir}/${withoutRowid ? 'without' : 'rowid'}.db`, withoutRowid);
    return {
      withoutRowid,
      db,
      keys,
      select: db.prepare('SELECT data, created_at, touched_at, owner FROM session WHERE sid_hash = ?'),
      update: db.prepare('UPDATE session SET data = ?, touched_at = ? WHERE sid_hash = ?'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
    };
  });
  for (let round = 1; round <= 3; round++) {
    for (const { withoutRowid, keys, select, update, begin, commit } of layouts) {
      let since = process.cpuUsage();
      for (let i = 0; i < READS; i++) select.get(keys[(i * 7919) % HOT]);
      const read = cpu(since) / READS;
      since = process.cpuUsage();
      const now = Date.now();
      for (let b = 0; b < READS / BATCH; b++) {
        begin.run();
        for (let j = 0; j < BATCH; j++) {
          const key = keys[((b * BATCH + j) * 7919) % HOT];
          const row = select.get(key) as { data: string };
          update.run(row.data, now + round * READS + b, key);
        }
        commit.run();
      }
      const write = cpu(since) / READS;
      console.log(`| ${withoutRowid ? 'WITHOUT ROWID' : 'rowid (as stored)'} | ${round} | ${read.toFixed(2)} | ${write.toFixed(2)} |`);
    }
  }
  for (const { db } of layouts) db.close();
} finally {
  temp.remove();
}
