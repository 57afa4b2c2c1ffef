// The fleet (test/fleet.ts) on one Redis server, and (test/run.ts) on a Redis
// Cluster: three app processes sharing a key prefix.
import { test } from 'uvu';
import { redisCommands, redisDump, redisTestUrl } from './engines.ts';
import { fleetSuite } from './fleet.ts';

// Sessions last used two hours ago, kept for a day (as a dead key lingers
// until the sweep); in the group of KEYS[1] (on a cluster, its slot).
const SEED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, tonumber(ARGV[1]) do
  local key = KEYS[1] .. ARGV[2] .. '-' .. i
  redis.call('HSET', key, 'c', now - 7200000, 't', now - 7200000, '.' .. '"seed"', 'true')
  redis.call('PEXPIRE', key, 86400000)
end
return 0`;

// Dead: last used (or created, for maxLifetime) more than maxAge (an hour) ago.
const DEAD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = 0
for _, key in ipairs(KEYS) do
  local touched = redis.call('HGET', key, 't')
  if touched and tonumber(touched) < now - 3600000 then dead = dead + 1 end
end
return dead`;

fleetSuite({
  database: redisTestUrl,
  async sessionsWithKey(table, key) {
    const dump = await redisDump(table);
    return dump.filter((entry) => entry === `.${JSON.stringify(key)}`).length;
  },
  async seedDead(table, n) {
    const cluster = (await redisTestUrl()).startsWith('redis+cluster://');
    await redisCommands(async (send) => {
      for (let done = 0, batch = 0; done < n; done += 5000, batch++) {
        // On a cluster, each batch in a group of its own (spread over the primaries).
        const head = cluster ? `${table}:s:{s${batch}}seed` : `${table}:s:seed`;
        await send('EVAL', SEED, '1', head, String(Math.min(5000, n - done)), String(done));
      }
    });
  },
  async countDead(table) {
    return redisCommands(async (send, scan) => {
      let dead = 0;
      // One key per script call: on a cluster, a script's keys share a slot.
      for (const key of await scan(`${table}:s:*`)) dead += Number(await send('EVAL', DEAD, '1', key));
      return dead;
    });
  },
});

test.run();
