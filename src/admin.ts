// The public admin calls — setupStore, clearStore, dropStore: the mix
// session.setup/clear/drop tasks — on any engine. They run on the caller's
// thread, on a short-lived connection of their own; an engine's client is
// loaded only when its admin is first used.
import { resolveLocation } from './config.ts';
import { engineFor } from './engines/index.ts';

async function adminFor(options?: { database?: string; table?: string }) {
  const at = resolveLocation(options);
  return { at, admin: await engineFor(at.database).admin() };
}

/** Creates the session table and its indexes; idempotent on a table of the right shape. */
export async function setupStore(options?: { database?: string; table?: string }): Promise<void> {
  const { at, admin } = await adminFor(options);
  await admin.setup(at);
}

/** Deletes every session; a missing table or database file is nothing to do. */
export async function clearStore(options?: { database?: string; table?: string }): Promise<void> {
  const { at, admin } = await adminFor(options);
  await admin.clear(at, null);
}

/** Drops the session table; a missing table or database file is nothing to do. */
export async function dropStore(options?: { database?: string; table?: string }): Promise<void> {
  const { at, admin } = await adminFor(options);
  await admin.drop(at);
}
