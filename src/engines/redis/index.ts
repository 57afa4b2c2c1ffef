// The Redis engine (node-redis): a redis://, rediss://, redis+cluster:// or
// rediss+cluster:// URL. Loading this
// descriptor loads no `redis`: the worker, sweeper and admin do.
import type { Engine } from '../engine.ts';
import { moduleUrl } from '../engine.ts';
import { isClusterUrl, isRedisUrl, redactIn, redactUrl, redisUrlProblem } from './url.ts';

export const redis: Engine = {
  name: 'redis',
  form: 'a redis:// URL',
  recognizes: isRedisUrl,
  problem: (database) => {
    const problem = redisUrlProblem(database);
    return problem && `is not a usable Redis URL: ${problem}`;
  },
  durabilityRefusal:
    "applies to SQLite only; with a Redis database, durability is the server's appendonly/appendfsync settings and ?waitReplicas=N in the URL (leave durability out)",
  redact: redactUrl,
  redactIn,
  storeWorker: moduleUrl('./store-worker', import.meta.url),
  sweeper: moduleUrl('./sweeper', import.meta.url),
  // Redis expires keys by itself.
  housekeeping: false,
  cleanerConnects: () => true,
  renewedIds: (database) => (isClusterUrl(database) ? 'same-group' : 'fresh'),
  share: () => ({
    store: { started: new SharedArrayBuffer(4) },
    cleaner: {},
    died: () => {},
  }),
  admin: async () => (await import('./admin.ts')).redisAdmin,
};
