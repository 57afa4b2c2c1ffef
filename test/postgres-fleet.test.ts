// The fleet (test/fleet.ts) on one PostgreSQL table.
import { test } from 'uvu';
import { adminQuery, postgresDatabase } from './engines.ts';
import { fleetSuite } from './fleet.ts';

fleetSuite({
  database: postgresDatabase,
  async sessionsWithKey(table, key) {
    const { rows } = await adminQuery(`SELECT count(*) AS n FROM "${table}" WHERE data ? $1`, [key], await postgresDatabase());
    return Number(rows[0].n);
  },
  async seedDead(table, n) {
    await adminQuery(
      `INSERT INTO "${table}" (sid_hash, data, created_at, touched_at)
      SELECT sha256(gen_random_uuid()::text::bytea), '{}', t, t FROM generate_series(1, $1::int) AS i,
      (SELECT (extract(epoch from now()) * 1000)::bigint - 7200000 AS t) AS at`,
      [n],
      await postgresDatabase(),
    );
  },
  async countDead(table) {
    const { rows } = await adminQuery(
      `SELECT count(*) AS n FROM "${table}" WHERE touched_at < (extract(epoch from now()) * 1000)::bigint - 3600000`,
      [],
      await postgresDatabase(),
    );
    return Number(rows[0].n);
  },
});

test.run();
