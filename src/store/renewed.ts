// "Renewed is not gone." A renew (a login) moves a session to a new id; the
// old id's row is kept, emptied, as a tombstone (`renewed_to`: the digest of
// the id it moved to) until the old session would have expired, and swept
// like any dead row after that. A request that loaded the old id and
// commits later is told RENEWED instead of "gone": it stores nothing and
// sends no Set-Cookie (the browser already holds the new id), where "gone"
// would expire the cookie and log the browser out. The old id never reads
// or writes the renewed session; only the owner's revoke follows the chain.

/**
 * A request that *arrives* with a renewed id (one sent before the browser had
 * the login's response) is told RENEWED for this long after the renew; later,
 * the id is simply unknown (a fresh session, as for any dead cookie). So a
 * cookie planted in a browser and renewed by whoever planted it cannot keep
 * that browser's anonymous session from being stored for long. A request
 * that loaded the id before the renew is told RENEWED at commit for as long
 * as the tombstone lives.
 */
export const ARRIVAL_GRACE_MS = 30_000;

/** The store actor's reply for an id that was renewed (never an id: ids are 43 characters). */
export const RENEWED = 'renewed';
export type Renewed = typeof RENEWED;
