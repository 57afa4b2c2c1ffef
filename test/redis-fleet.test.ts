// The fleet (test/fleet.ts) on one Redis server: three app processes sharing
// a key prefix.
import { test } from 'uvu';
import { redisCommands, redisDump, redisTestUrl } from './engines.ts';
import { fleetSuite } from './fleet.ts';

// Sessions last used two hours ago, kept for a day (as a dead key lingers until the sweep).
const SEED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, tonumber(ARGV[2]) do
  local key = ARGV[1] .. ':s:seed' .. ARGV[3] .. '-' .. i
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
    await redisCommands(async (send) => {
      for (let done = 0; done < n; done += 5000) await send('EVAL', SEED, '0', table, String(Math.min(5000, n - done)), String(done));
    });
  },
  async countDead(table) {
    return redisCommands(async (send) => {
      let dead = 0;
      let cursor = '0';
      do {
        const [next, found] = (await send('SCAN', cursor, 'MATCH', `${table}:s:*`, 'COUNT', '1000')) as [string, string[]];
        cursor = next;
        if (found.length > 0) dead += Number(await send('EVAL', DEAD, String(found.length), ...found));
      } while (cursor !== '0');
      return dead;
    });
  },
});

test.run();
