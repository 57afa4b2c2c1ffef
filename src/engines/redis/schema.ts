// A store on Redis has no table: its marker key says it was set up (and with
// which layout), so `autoSetup: false` and the command line can tell a store
// that is not there.
import { TableNotExistsError } from '../../errors.ts';
import type { Client } from './connection.ts';
import { eachPage } from './engine.ts';
import { keys, LAYOUT } from './script.ts';
import { redactUrl } from './url.ts';

/** 'missing': the marker was created; 'ok': it was there. */
export async function setupStore(client: Client, table: string): Promise<'missing' | 'ok'> {
  const created = await client.sendCommand(['HSETNX', keys(table).meta, 'layout', LAYOUT]);
  return Number(created) === 1 ? 'missing' : 'ok';
}

export async function storeExists(client: Client, table: string): Promise<boolean> {
  return Number(await client.sendCommand(['EXISTS', keys(table).meta])) === 1;
}

export async function requireStore(client: Client, table: string, database: string): Promise<void> {
  if (await storeExists(client, table)) return;
  throw new TableNotExistsError(
    `the session store "${table}" does not exist in ${redactUrl(database)} (no key ${keys(table).meta}); run \`supervised-sessions setup\` or start with autoSetup: true`,
  );
}

/** Deletes the store's sessions and owners' indexes (the marker stays); how many sessions there were. */
export async function clearStore(client: Client, table: string): Promise<number> {
  const k = keys(table);
  let sessions = 0;
  await eachPage(client, k.sessions, async (page) => {
    sessions += page.length;
    await client.sendCommand(['UNLINK', ...page]);
  });
  await eachPage(client, k.owners, async (page) => {
    await client.sendCommand(['UNLINK', ...page]);
  });
  return sessions;
}

/** Every key of the store, the marker and the lock too. */
export async function dropStore(client: Client, table: string): Promise<boolean> {
  const existed = await storeExists(client, table);
  let any = false;
  await eachPage(client, `${keys(table).prefix}*`, async (page) => {
    any = true;
    await client.sendCommand(['UNLINK', ...page]);
  });
  return existed || any;
}
