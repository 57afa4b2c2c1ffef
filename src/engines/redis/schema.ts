// A store on Redis has no table: its marker key says it was set up (and with
// which layout), so `autoSetup: false` and the command line can tell a store
// that is not there.
import { TableNotExistsError } from '../../errors.ts';
import type { Conn } from './connection.ts';
import { bySlot, eachPage } from './engine.ts';
import { keys, LAYOUT } from './script.ts';
import { redactUrl } from './url.ts';

/** 'missing': the marker was created; 'ok': it was there. */
export async function setupStore(client: Conn, table: string): Promise<'missing' | 'ok'> {
  const created = await client.send(keys(table).meta, ['HSETNX', keys(table).meta, 'layout', LAYOUT]);
  return Number(created) === 1 ? 'missing' : 'ok';
}

export async function storeExists(client: Conn, table: string): Promise<boolean> {
  return Number(await client.send(keys(table).meta, ['EXISTS', keys(table).meta])) === 1;
}

export async function requireStore(client: Conn, table: string, database: string): Promise<void> {
  if (await storeExists(client, table)) return;
  throw new TableNotExistsError(
    `the session store "${table}" does not exist in ${redactUrl(database)} (no key ${keys(table).meta}); run \`supervised-sessions setup\` or start with autoSetup: true`,
  );
}

/** Deletes the store's sessions and owners' indexes (the marker stays); how many sessions there were. */
export async function clearStore(client: Conn, table: string): Promise<number> {
  const k = keys(table);
  let sessions = 0;
  await eachPage(client, k.sessions, async (page) => {
    sessions += page.length;
    await unlink(client, page, table);
  });
  for (const pattern of [k.owners, k.directories]) await eachPage(client, pattern, (page) => unlink(client, page, table));
  return sessions;
}

/** Every key of the store, the marker and the lock too. */
export async function dropStore(client: Conn, table: string): Promise<boolean> {
  const existed = await storeExists(client, table);
  let any = false;
  await eachPage(client, `${keys(table).prefix}*`, async (page) => {
    any = true;
    await unlink(client, page, table);
  });
  return existed || any;
}

/** UNLINK of a page of keys, one command per slot on a cluster. */
async function unlink(client: Conn, page: string[], table: string): Promise<void> {
  for (const keyList of client.cluster ? bySlot(page, table) : [page]) await client.send(keyList[0], ['UNLINK', ...keyList]);
}
