import type { CommitContext } from './request-commit.ts';
import type { PendingWork, Session } from './session.ts';

/** What the rounds of one request's commit decide, kept between rounds. */
export interface RoundState {
  /** The Set-Cookie to send with the headers, as decided so far. */
  cookie: string | null;
  /** The session was dropped or found gone: never recreate it, ignore later changes. */
  gone: boolean;
  /** The request came with our cookie (a drop then expires it). */
  readonly hadCookie: boolean;
}

/**
 * One round of a commit: the changes taken from the session, handed to the
 * store as ONE operation — a login (renew + setOwner + data) or a clear()
 * with setOwner(null) never lands half-done — and the cookie decided.
 * Shared by every front door (createHandler and Express through
 * RequestCommit, Fastify in its onSend hook).
 */
export async function commitRound(work: PendingWork, session: Session, ctx: CommitContext, state: RoundState): Promise<void> {
  // Gone (dropped, expired, revoked): nothing more is stored for it.
  if (state.gone) return;
  const { store, setCookie, expiredCookie } = ctx;
  const id = session.id;
  const lost = () => {
    // Dropped or expired while the request ran: expire the cookie, keep the handler's status.
    state.gone = true;
    session.committed(null);
    state.cookie = expiredCookie;
  };
  if (work.drop) {
    if (id !== null) await store.delete(id);
    session.committed(null);
    state.gone = true;
    // A cookie the client holds is expired; one only made in this request never went out.
    state.cookie = state.hadCookie ? expiredCookie : null;
    return;
  }
  if (id === null) {
    // A new, empty session without an owner is not worth storing, and gets no cookie.
    const owner = typeof work.owner === 'string' ? { owner: work.owner } : undefined;
    const data = work.data!;
    if (Object.keys(data).length === 0 && owner === undefined) return;
    const created = (await store.put(null, data, owner))!;
    session.committed(created);
    state.cookie = setCookie(created);
    return;
  }
  const ownerChange = work.owner !== undefined ? { owner: work.owner } : {};
  if (work.renew) {
    const changes = work.cleared ? { replace: work.data!, ...ownerChange } : { set: work.set, unset: work.unset, ...ownerChange };
    const next = await store.renew(id, changes);
    if (next === null) return lost();
    session.committed(next);
    state.cookie = setCookie(next);
  } else if (work.cleared) {
    if ((await store.put(id, work.data!, ownerChange)) === null) return lost();
  } else if (work.unset.length > 0 || Object.keys(work.set).length > 0 || work.owner !== undefined) {
    if (!(await store.patch(id, { set: work.set, unset: work.unset, ...ownerChange }))) return lost();
  }
}

/**
 * The Set-Cookie header as it should go out: the sliding re-send `preset`
 * (added before the handler ran) replaced when the rounds decided otherwise,
 * the decided cookie added unless it is already there.
 */
export function cookieHeader(current: number | string | string[] | undefined, preset: string | null, cookie: string | null): string[] | null {
  const list = current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
  let next = preset !== null && cookie !== preset ? list.filter((line) => line !== preset) : list;
  if (cookie !== null && !next.includes(cookie)) next = [...next, cookie];
  return next === list ? null : next;
}
