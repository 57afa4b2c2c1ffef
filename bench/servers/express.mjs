// express-session with the store named by STORE: memory | better-sqlite3 | connect-sqlite3 | connect-pg-simple | connect-redis,
// configured as their READMEs recommend for production.
import express from 'express';
import session from 'express-session';
import { database, port, ready, SECRET, stats } from './common.mjs';

async function makeStore(kind) {
  if (kind === 'memory') return new session.MemoryStore();
  if (kind === 'better-sqlite3') {
    const { default: Database } = await import('better-sqlite3');
    const { default: factory } = await import('better-sqlite3-session-store');
    const SqliteStore = factory(session);
    const db = new Database(database);
    db.pragma('journal_mode = WAL');
    return new SqliteStore({ client: db, expired: { clear: true, intervalMs: 900000 } });
  }
  if (kind === 'connect-sqlite3') {
    const { default: factory } = await import('connect-sqlite3');
    const SQLiteStore = factory(session);
    const [dir, db] = [database.slice(0, database.lastIndexOf('/')), database.slice(database.lastIndexOf('/') + 1)];
    return new SQLiteStore({ dir, db, concurrentDB: true });
  }
  if (kind === 'connect-pg-simple') {
    // As its README recommends: a pg Pool handed in, the table created if missing.
    const { default: pg } = await import('pg');
    const { default: factory } = await import('connect-pg-simple');
    const PgStore = factory(session);
    return new PgStore({ pool: new pg.Pool({ connectionString: database }), createTableIfMissing: true });
  }
  if (kind === 'connect-redis') {
    // As its README recommends: a node-redis client, connected, handed in; the default prefix.
    const { createClient } = await import('redis');
    const { RedisStore } = await import('connect-redis');
    const client = createClient({ url: database });
    client.on('error', (error) => console.error(error));
    await client.connect();
    return new RedisStore({ client });
  }
  throw new Error(`unknown STORE ${kind}`);
}

const app = express();
app.get('/__stats', (_req, res) => res.end(stats()));
app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store: await makeStore(process.env.STORE) }));
app.get('/login', (req, res) => {
  req.session.n = 0;
  res.json({ n: 0 });
});
app.get('/r', (req, res) => res.json({ n: req.session.n ?? 0 }));
app.get('/w', (req, res) => {
  req.session.n = (req.session.n ?? 0) + 1;
  res.json({ n: req.session.n });
});
const server = app.listen(port, '127.0.0.1', () => ready(server));
