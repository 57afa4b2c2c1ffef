// What a crash of Redis can lose, said once at start (never a failed start:
// managed Redis often refuses CONFIG GET).
import type { Conn, NodeClient } from './connection.ts';

async function setting(client: NodeClient, name: string): Promise<string | undefined> {
  try {
    const reply = (await client.sendCommand(['CONFIG', 'GET', name])) as string[];
    return reply[1];
  } catch {
    return undefined;
  }
}

export async function durabilityWarning(conn: Conn, waitReplicas: number): Promise<string | null> {
  // A cluster: every primary is asked; each distinct warning is said once.
  const warnings = new Set<string>();
  for (const node of await conn.primaries()) for (const one of await nodeWarnings(node, waitReplicas)) warnings.add(one);
  return warnings.size === 0 ? null : [...warnings].join('; and ');
}

async function nodeWarnings(client: NodeClient, waitReplicas: number): Promise<string[]> {
  const warnings: string[] = [];
  // Every key of the store has a TTL: with a memory limit, a volatile-* or
  // allkeys-* policy may evict an owner's index or a tombstone before it expires.
  const policy = await setting(client, 'maxmemory-policy');
  const maxmemory = await setting(client, 'maxmemory');
  if (policy !== undefined && policy !== 'noeviction' && maxmemory !== undefined && maxmemory !== '0') {
    warnings.push(
      `the Redis server has maxmemory-policy ${policy}: when it reaches maxmemory it may evict sessions, owners' indexes and renewed ids' tombstones before they expire (a session lost, a revoke that misses one); set maxmemory-policy noeviction (writes then fail with 503 when memory is full)`,
    );
  }
  if (waitReplicas === 0) {
    const appendonly = await setting(client, 'appendonly');
    const fsync = await setting(client, 'appendfsync');
    if (appendonly !== undefined && appendonly !== 'yes') {
      warnings.push(
        'the Redis server has appendonly off: a crash or restart of Redis loses every session written since its last snapshot, and a failover loses what the replica had not received; set appendonly yes and appendfsync always, or add ?waitReplicas=N to the URL',
      );
    } else if (appendonly === 'yes' && fsync !== undefined && fsync !== 'always') {
      warnings.push(
        `the Redis server has appendfsync ${fsync}: a crash of its machine can lose up to about a second of acknowledged session writes; set appendfsync always, or add ?waitReplicas=N to the URL`,
      );
    }
  }
  return warnings;
}
