// Not a design of this library: what the request path would cost WITHOUT the
// hop, for comparison with bare-hop.mjs. Bare node:http plus the store's
// SQLite work done on the main thread itself — the row's key hashed
// (SHA-256), the row read (R), then written back in its own transaction (W) —
// on a WAL file of 1,000 sessions in the store's own table. No cookie, no
// Session: only the storage work moved to the main thread.
import { hash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { DatabaseSync } from 'node:sqlite';
import { database, port, ready, stats } from './common.mjs';

// The store's own table (setupStore), on the store's pragmas.
const dist = process.env.SESSIONS_DIST ?? new URL('../../dist/', import.meta.url).href;
const { setupStore } = await import(new URL('index.js', dist).href);
await setupStore({ database });
const db = new DatabaseSync(database);
db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
const sids = Array.from({ length: 1000 }, () => randomBytes(32).toString('base64url'));
const insert = db.prepare('INSERT INTO session (sid_hash, data, created_at, touched_at) VALUES (?, ?, ?, ?)');
db.exec('BEGIN');
for (const sid of sids) insert.run(hash('sha256', sid, 'buffer'), '{"n":0}', Date.now(), Date.now());
db.exec('COMMIT');
const select = db.prepare('SELECT data, created_at, touched_at, owner FROM session WHERE sid_hash = ?');
const update = db.prepare('UPDATE session SET data = ?, touched_at = ? WHERE sid_hash = ?');

let next = 0;
const server = createServer((req, res) => {
  if (req.url === '/__stats') return res.end(stats());
  const key = hash('sha256', sids[next++ % sids.length], 'buffer');
  const data = JSON.parse(select.get(key).data);
  if (req.url === '/w') {
    data.n++;
    update.run(JSON.stringify(data), Date.now(), key);
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ n: data.n }));
});
server.listen(port, '127.0.0.1', () => ready(server));
process.once('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
