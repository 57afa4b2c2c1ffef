// What a crash of Redis can lose, said once at start (never a failed start:
// managed Redis often refuses CONFIG GET).
import type { Client } from './connection.ts';

export async function durabilityWarning(client: Client, waitReplicas: number): Promise<string | null> {
  if (waitReplicas > 0) return null;
  let config: string[];
  try {
    config = (await client.sendCommand(['CONFIG', 'GET', 'append*'])) as string[];
  } catch {
    return null;
  }
  const settings = new Map<string, string>();
  for (let i = 0; i + 1 < config.length; i += 2) settings.set(config[i], config[i + 1]);
  const appendonly = settings.get('appendonly');
  const fsync = settings.get('appendfsync');
  if (appendonly === undefined) return null;
  if (appendonly !== 'yes') {
    return 'the Redis server has appendonly off: a crash or restart of Redis loses every session written since its last snapshot, and a failover loses what the replica had not received; set appendonly yes and appendfsync always, or add ?waitReplicas=N to the URL';
  }
  if (fsync !== 'always') {
    return `the Redis server has appendfsync ${fsync}: a crash of its machine can lose up to about a second of acknowledged session writes; set appendfsync always, or add ?waitReplicas=N to the URL`;
  }
  return null;
}
