// What a crash of Redis can lose, said once at start (never a failed start:
// managed Redis often refuses CONFIG GET).
import type { Client } from './connection.ts';

async function setting(client: Client, name: string): Promise<string | undefined> {
  try {
    const reply = (await client.sendCommand(['CONFIG', 'GET', name])) as string[];
    return reply[1];
  } catch {
    return undefined;
  }
}

export async function durabilityWarning(client: Client, waitReplicas: number): Promise<string | null> {
  // Every key of the store has a TTL: a volatile-* or allkeys-* policy may
  // evict an owner's index or a tombstone before it expires.
  const policy = await setting(client, 'maxmemory-policy');
  if (policy !== undefined && policy !== 'noeviction') {
    return `the Redis server has maxmemory-policy ${policy}: when it reaches maxmemory it may evict sessions, owners' indexes and renewed ids' tombstones before they expire (a session lost, a revoke that misses one); set maxmemory-policy noeviction (writes then fail with 503 when memory is full)`;
  }
  if (waitReplicas > 0) return null;
  const appendonly = await setting(client, 'appendonly');
  const fsync = await setting(client, 'appendfsync');
  if (appendonly === undefined) return null;
  if (appendonly !== 'yes') {
    return 'the Redis server has appendonly off: a crash or restart of Redis loses every session written since its last snapshot, and a failover loses what the replica had not received; set appendonly yes and appendfsync always, or add ?waitReplicas=N to the URL';
  }
  if (fsync !== 'always') {
    return `the Redis server has appendfsync ${fsync}: a crash of its machine can lose up to about a second of acknowledged session writes; set appendfsync always, or add ?waitReplicas=N to the URL`;
  }
  return null;
}
