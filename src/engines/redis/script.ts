// The store's operations on Redis: one Lua script, run by EVALSHA, so every
// operation is atomic on the server and judged by the server's clock (TIME).
//
// Key layout, under the prefix `<table>:` (docs/redis.md):
//   <table>:s:<digest>   a hash per session, keyed by the base64url SHA-256 of
//                        its id (Redis never holds an id). Fields: c (created
//                        at), t (touched at), o (owner), r (renewed to: the
//                        digest the id moved to, store/renewed.ts), m (own
//                        lifetime in ms), and one field per top-level key of
//                        the data: '.' + the key as JSON, holding the value as
//                        JSON — so a patch writes only the keys it changes, and
//                        two requests patching different keys both keep theirs.
//                        PEXPIREAT: the session's expiry (Redis's own expiry).
//   <table>:o:<owner>    a sorted set of the owner's session digests scored by
//                        expiry, kept exact by every write (never by keyspace
//                        notifications) and pruned when listed, capped, swept.
//   On a Redis Cluster the session and owner keys carry a group between
//   braces after s: and o: (<table>:s:{g}<digest>, <table>:o:{g}<owner>): the
//   first byte of the digest in hex, which a renewed id's digest shares
//   (store/ids.ts) — so every key one call touches shares a slot; an owner
//   has an index per group, and <table>:g:{tag}<owner> lists its groups
//   (engine.ts).
//   <table>:meta         the store's marker (setup creates it, drop removes it).
//   <table>:sweep        the sweep lock (SET NX PX): one sweeper at a time.
//   <table>:r:<batch>    a write batch's replies, kept for twice requestTimeout:
//                        the answer to the same batch sent again (engine.ts).
import { createHash } from 'node:crypto';
import type { ExpiryPolicy } from '../../store/expiry.ts';
import { ARRIVAL_GRACE_MS } from '../../store/renewed.ts';

/** The layout version the marker holds. */
export const LAYOUT = '1';

export const keys = (table: string) => ({
  prefix: `${table}:`,
  /** A session's hash; on a cluster, under its group (`{g}`: the slot it shares with its renewed ids and owners' indexes). */
  session: (member: string, group?: string) => (group === undefined ? `${table}:s:${member}` : `${table}:s:{${group}}${member}`),
  /** An owner's index; on a cluster, one per group the owner has sessions in. */
  owner: (owner: string, group?: string) => (group === undefined ? `${table}:o:${owner}` : `${table}:o:{${group}}${owner}`),
  /**
   * On a cluster: the groups an owner has (or had) sessions in, scored by
   * when one was last given that owner; in the slot of the owner's tag.
   */
  groups: (owner: string) => `${table}:g:{${ownerTag(owner)}}${owner}`,
  /** On a cluster with maxSessionsPerOwner: the lock a login and its cap are applied under. */
  capLock: (owner: string) => `${table}:l:{${ownerTag(owner)}}${owner}`,
  /** On a cluster: the owner a list of groups is of (`<table>:g:{tag}<owner>`). */
  ownerOfList: (key: string) => key.slice(key.indexOf('}', table.length + 3) + 1),
  meta: `${table}:meta`,
  lock: `${table}:sweep`,
  reply: (batch: string, group?: string) => (group === undefined ? `${table}:r:${batch}` : `${table}:r:{${group}}${batch}`),
  /** Written before WAIT (engine.ts), so that WAIT covers every write the server had. */
  wait: (group?: string) => (group === undefined ? `${table}:w` : `${table}:w:{${group}}`),
  sessions: `${table}:s:*`,
  owners: `${table}:o:*`,
  directories: `${table}:g:*`,
});

/** An owner's tag on a cluster: 16 base64url characters of the SHA-256 of its name (never a brace, whatever the name). */
export const ownerTag = (owner: string): string => createHash('sha256').update(owner).digest('base64url').slice(0, 16);

/**
 * How long a dead session's key outlives its expiry: two cleaner intervals,
 * as a dead row waits for the sweep on the other engines. Meanwhile it is
 * dead to every read, and it keeps a late write under its key (an
 * express-session save after the expiry) from bringing it back; the sweep
 * deletes it, and Redis expires it by itself when no cleaner runs.
 */
export const lingerMs = (cleanerIntervalSeconds: number): number => Math.round(2 * cleanerIntervalSeconds * 1000);

/**
 * The script for one store: the table, the expiry policy, the size limit,
 * the cap, the linger and how long a write's reply is kept are constants of
 * it (one SHA per configuration; nothing per call).
 */
export function storeScript(
  table: string,
  policy: ExpiryPolicy,
  limits: { maxBytes?: number; maxPerOwner?: number | null; lingerMs?: number; replyTtlMs?: number; cluster?: boolean } = {},
): string {
  const { maxBytes = 0, maxPerOwner = null, lingerMs = 0, replyTtlMs = 0, cluster = false } = limits;
  const constants = [
    `local P = ${luaString(`${table}:`)}`,
    `local MAXAGE = ${policy.maxAgeMs}`,
    `local FIXED = ${policy.timestamp === 'fixed'}`,
    `local MAXLIFE = ${policy.maxLifetimeMs ?? -1}`,
    `local TOUCHAFTER = ${policy.touchAfterMs}`,
    `local MAXBYTES = ${maxBytes}`,
    `local CAP = ${maxPerOwner ?? 0}`,
    `local GRACE = ${ARRIVAL_GRACE_MS}`,
    `local LINGER = ${Math.round(lingerMs)}`,
    `local REPLYTTL = ${Math.max(1000, Math.round(replyTtlMs))}`,
    `local CLUSTER = ${cluster}`,
  ];
  return `${constants.join('\n')}\n${BODY}`;
}

const luaString = (text: string) => `'${text.replace(/[\\']/g, '\\$&')}'`;

// Replies: a table whose first element says what happened: 0 gone, 1 done,
// 2 renewed (store/renewed.ts), 3 too large (with the size). Lua's false
// cannot sit in a reply table, so a missing owner is '' (owners are never
// empty) and a missing lifetime -1.
const BODY = `
-- The call being run: its keys and arguments (A[1] is its op).
local K, A, key, op
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The prefixes of the group a key is in (a cluster key: '{g}' after s: or o:;
-- on one server an owner's name may start with a brace: no group there).
local SP, OP = P .. 's:', P .. 'o:'
local function place(k)
  if CLUSTER and string.byte(k, #P + 3) == 123 then
    local close = string.find(k, '}', #P + 4, true)
    local g = string.sub(k, #P + 3, close)
    SP, OP = P .. 's:' .. g, P .. 'o:' .. g
  else
    SP, OP = P .. 's:', P .. 'o:'
  end
end
local function skey(m) return SP .. m end
local function okey(o) return OP .. o end
local function member(key) return string.sub(key, #SP + 1) end

local function load(key)
  local v = redis.call('HMGET', key, 'c', 't', 'o', 'r', 'm')
  if not v[1] then return nil end
  return { c = tonumber(v[1]), t = tonumber(v[2]), o = v[3], r = v[4], m = v[5] and tonumber(v[5]) or false }
end
local function idle(s) return (FIXED and s.c or s.t) + (s.m or MAXAGE) end
local function expires(s)
  local e = idle(s)
  if MAXLIFE >= 0 and s.c + MAXLIFE < e then e = s.c + MAXLIFE end
  return e
end
local function live(s, n) return idle(s) >= n and (MAXLIFE < 0 or s.c >= n - MAXLIFE) end
local function touchAfter(m)
  if not m then return TOUCHAFTER end
  return math.min(TOUCHAFTER, math.floor(m / 20))
end
-- The live session under key, 'renewed' for a live tombstone, or nil.
local function find(key, n)
  local s = load(key)
  if not s or not live(s, n) then return nil end
  if s.r then return 'renewed' end
  return s
end

-- The data fields: a map field -> value, and the size of the JSON they make.
local function dataOf(key)
  local all = redis.call('HGETALL', key)
  local map = {}
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 46 then map[all[i]] = all[i + 1] end
  end
  return map
end
local function sizeOf(map)
  local n, total = 0, 2
  for f, v in pairs(map) do
    total = total + #f + #v
    n = n + 1
  end
  if n > 1 then total = total + n - 1 end
  return total
end
-- A session and its data fields in one read (HGETALL): nil when there is no session.
local function loadAll(key)
  local all = redis.call('HGETALL', key)
  local s = { c = false, t = false, o = false, r = false, m = false }
  local map = {}
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 46 then map[all[i]] = all[i + 1] else s[all[i]] = all[i + 1] end
  end
  if not s.c then return nil, nil end
  s.c = tonumber(s.c)
  s.t = tonumber(s.t)
  if s.m then s.m = tonumber(s.m) end
  return s, map
end
-- Deletes the data fields a loadAll found.
local function clearFields(key, map)
  local gone = {}
  for f in pairs(map) do gone[#gone + 1] = f end
  for i = 1, #gone, 1000 do redis.call('HDEL', key, unpack(gone, i, math.min(i + 999, #gone))) end
end
local function clearData(key)
  local all = redis.call('HKEYS', key)
  local gone = {}
  for _, f in ipairs(all) do
    if string.byte(f, 1) == 46 then gone[#gone + 1] = f end
  end
  for i = 1, #gone, 1000 do redis.call('HDEL', key, unpack(gone, i, math.min(i + 999, #gone))) end
end
local function writeData(key, map)
  local flat = {}
  for f, v in pairs(map) do
    flat[#flat + 1] = f
    flat[#flat + 1] = v
  end
  for i = 1, #flat, 1000 do redis.call('HSET', key, unpack(flat, i, math.min(i + 999, #flat))) end
end
-- Reads pairs A[at+1 .. at+2*count] into map; returns the next index.
local function readPairs(map, at, count)
  for i = 1, count do map[A[at + 2 * i - 1]] = A[at + 2 * i] end
  return at + 2 * count
end
local function flatData(out, map)
  for f, v in pairs(map) do
    out[#out + 1] = f
    out[#out + 1] = v
  end
  return out
end

-- The owner's index follows the session's expiry; the index itself expires
-- with its last session.
local function seal(key, s)
  local e = expires(s)
  redis.call('PEXPIREAT', key, e + LINGER)
  if s.o then
    local ok = okey(s.o)
    redis.call('ZADD', ok, e, member(key))
    local last = redis.call('ZRANGE', ok, -1, -1, 'WITHSCORES')
    if last[2] then redis.call('PEXPIREAT', ok, math.floor(tonumber(last[2]))) end
  end
end
local function setLifetime(key, s, m)
  s.m = m
  if m then redis.call('HSET', key, 'm', m) else redis.call('HDEL', key, 'm') end
end

-- maxSessionsPerOwner: the session just given the owner and the (CAP - 1)
-- most recently used others are kept; the owner's other sessions go.
local function cap(owner, keep, n)
  if CAP <= 0 then return end
  local ok = okey(owner)
  local others = {}
  for _, m in ipairs(redis.call('ZRANGE', ok, 0, -1)) do
    if m ~= keep then
      local s = load(skey(m))
      if s and s.o == owner and not s.r and live(s, n) then
        others[#others + 1] = { m, s.t }
      else
        if s and s.o == owner then redis.call('DEL', skey(m)) end
        redis.call('ZREM', ok, m)
      end
    end
  end
  if #others < CAP then return end
  table.sort(others, function(a, b) return a[2] > b[2] end)
  for i = CAP, #others do
    redis.call('DEL', skey(others[i][1]))
    redis.call('ZREM', ok, others[i][1])
  end
end
-- An owner spec: 'u' unchanged, 'n' none, 's' .. owner.
local function give(key, s, spec, n)
  if spec == 'u' then return end
  local owner = false
  if spec ~= 'n' then owner = string.sub(spec, 2) end
  if s.o and s.o ~= owner then redis.call('ZREM', okey(s.o), member(key)) end
  s.o = owner
  if owner then
    redis.call('HSET', key, 'o', owner)
    redis.call('ZADD', okey(owner), expires(s), member(key))
    cap(owner, member(key), n)
  else
    redis.call('HDEL', key, 'o')
  end
end
-- A lifetime spec: 'u' unchanged, 'n' the app's maxAge, or ms.
local function lifetime(key, s, spec)
  if spec == 'u' then return end
  if spec == 'n' then setLifetime(key, s, false) else setLifetime(key, s, tonumber(spec)) end
end
local function ownLifetime(remaining, s, n)
  if remaining == 'n' then return false end
  local r = tonumber(remaining)
  if FIXED then return r + (n - s.c) end
  return r
end

local n = now()

local function dispatch()
if op == 'load' or op == 'get' or op == 'peek' then
  local s, data = loadAll(key)
  if not s or not live(s, n) then return { 0 } end
  if s.r then
    if n - s.t < GRACE then return { 2 } end
    return { 0 }
  end
  local touched = 0
  if op ~= 'peek' and not FIXED and n - s.t > touchAfter(s.m) then
    s.t = n
    redis.call('HSET', key, 't', n)
    seal(key, s)
    touched = 1
  end
  return flatData({ 1, touched, s.o or '', s.m or -1 }, data)
elseif op == 'alive' then
  local s = find(key, n)
  if s == nil then return { 0 } end
  if s == 'renewed' then return { 2 } end
  return { 1 }
elseif op == 'create' then
  -- ARGV: op, owner spec, lifetime spec, count, pairs.
  local map = {}
  readPairs(map, 4, tonumber(A[4]))
  local s = load(key)
  if s and s.r then return { 1 } end
  if s then
    clearData(key)
  else
    s = { c = n, t = n, o = false, r = false, m = false }
    redis.call('HSET', key, 'c', n, 't', n)
  end
  writeData(key, map)
  lifetime(key, s, A[3])
  give(key, s, A[2], n)
  seal(key, s)
  return { 1 }
elseif op == 'put' then
  local s, old = loadAll(key)
  if not s or not live(s, n) then return { 0 } end
  if s.r then return { 2 } end
  local map = {}
  readPairs(map, 4, tonumber(A[4]))
  clearFields(key, old)
  writeData(key, map)
  s.t = n
  redis.call('HSET', key, 't', n)
  lifetime(key, s, A[3])
  give(key, s, A[2], n)
  seal(key, s)
  return { 1 }
elseif op == 'patch' then
  -- ARGV: op, owner spec, lifetime spec, set count, pairs, unset count, fields.
  local s, map = loadAll(key)
  if not s or not live(s, n) then return { 0 } end
  if s.r then return { 2 } end
  local set = {}
  local at = readPairs(set, 4, tonumber(A[4]))
  local unsetCount = tonumber(A[at + 1])
  if tonumber(A[4]) > 0 or unsetCount > 0 then
    for f, v in pairs(set) do map[f] = v end
    for i = 1, unsetCount do map[A[at + 1 + i]] = nil end
    local size = sizeOf(map)
    if size > MAXBYTES then return { 3, size } end
    writeData(key, set)
    for i = 1, unsetCount do redis.call('HDEL', key, A[at + 1 + i]) end
  end
  -- The timestamp moves as a read's would (touchAfter passed), or with a new
  -- lifetime; otherwise the key's expiry and the owner's index stand as they are.
  local moved = A[2] ~= 'u' or A[3] ~= 'u'
  if A[3] ~= 'u' or n - s.t > touchAfter(s.m) then
    s.t = n
    redis.call('HSET', key, 't', n)
    moved = true
  end
  lifetime(key, s, A[3])
  give(key, s, A[2], n)
  if moved then seal(key, s) end
  return { 1 }
elseif op == 'renew' then
  -- KEYS: old, next. ARGV: op, next's digest, owner spec, lifetime spec,
  -- replace ('r' then count and pairs, or '-'), set count, pairs, unset count, fields.
  local nextKey = K[2]
  local s, old = loadAll(key)
  if not s or not live(s, n) or s.r then
    -- A replay after a committed renew finds the new id live: same answer.
    local t = find(nextKey, n)
    if t ~= nil and t ~= 'renewed' then return { 1 } end
    if s and live(s, n) and s.r then return { 2 } end
    return { 0 }
  end
  local map = {}
  for f, v in pairs(old) do map[f] = v end
  local at = 5
  if A[5] == 'r' then
    map = {}
    at = readPairs(map, 6, tonumber(A[6]))
  end
  local setCount = tonumber(A[at + 1])
  local set = {}
  at = readPairs(set, at + 1, setCount)
  local unsetCount = tonumber(A[at + 1])
  for f, v in pairs(set) do map[f] = v end
  for i = 1, unsetCount do map[A[at + 1 + i]] = nil end
  if A[5] == 'r' or setCount > 0 or unsetCount > 0 then
    local size = sizeOf(map)
    if size > MAXBYTES then return { 3, size } end
  end
  local ns = { c = s.c, t = s.t, o = s.o, r = false, m = s.m }
  if not FIXED then ns.t = n end
  redis.call('DEL', nextKey)
  redis.call('HSET', nextKey, 'c', ns.c, 't', ns.t)
  writeData(nextKey, map)
  if A[4] ~= 'u' then
    if A[4] == 'n' then ns.m = false else ns.m = tonumber(A[4]) end
  end
  if ns.m then redis.call('HSET', nextKey, 'm', ns.m) end
  local oldOwner = s.o
  if A[3] ~= 'u' then
    if A[3] == 'n' then ns.o = false else ns.o = string.sub(A[3], 2) end
  end
  if ns.o then redis.call('HSET', nextKey, 'o', ns.o) end
  -- The old id becomes a tombstone: no data, no owner, the new digest, the
  -- time of the renew (it keeps telling late requests "renewed").
  clearFields(key, old)
  redis.call('HDEL', key, 'o')
  redis.call('HSET', key, 'r', A[2], 't', n)
  if oldOwner then redis.call('ZREM', okey(oldOwner), member(key)) end
  s.t = n
  s.o = false
  redis.call('PEXPIREAT', key, expires(s) + LINGER)
  seal(nextKey, ns)
  if ns.o and ns.o ~= oldOwner then cap(ns.o, A[2], n) end
  return { 1 }
elseif op == 'delete' then
  local s = load(key)
  if not s then return { 0 } end
  if s.r then
    if live(s, n) then return { 2 } end
    return { 0 }
  end
  redis.call('DEL', key)
  if s.o then redis.call('ZREM', okey(s.o), member(key)) end
  return { 0 }
elseif op == 'sessionsOf' then
  local owner = A[2]
  local ok = okey(owner)
  local out = {}
  for _, m in ipairs(redis.call('ZRANGE', ok, 0, -1)) do
    local s = load(skey(m))
    if s and s.o == owner and not s.r and live(s, n) then
      out[#out + 1] = flatData({ m, s.c, s.t, expires(s) }, dataOf(skey(m)))
    elseif not s or s.o ~= owner then
      redis.call('ZREM', ok, m)
    end
  end
  return out
elseif op == 'revoke' then
  -- The session the handle names, under whatever id it was renewed to since.
  local owner = A[2]
  local m = A[3]
  local s
  for _ = 1, 64 do
    s = load(skey(m))
    if not s then return 0 end
    if not s.r then break end
    m = s.r
  end
  if s.r or s.o ~= owner then return 0 end
  redis.call('DEL', skey(m))
  redis.call('ZREM', okey(owner), m)
  if live(s, n) then return 1 end
  return 0
elseif op == 'revokeAll' then
  -- ARGV: op, owner, the kept digest or '', guarded ('1': only while the kept one is a live session of the owner).
  local owner = A[2]
  local except = A[3]
  if A[4] == '1' then
    local k = nil
    if except ~= '' then k = find(skey(except), n) end
    if k == nil or k == 'renewed' or k.o ~= owner then return -1 end
  end
  local ok = okey(owner)
  local count = 0
  for _, m in ipairs(redis.call('ZRANGE', ok, 0, -1)) do
    if m ~= except then
      local s = load(skey(m))
      if s and s.o == owner then
        redis.call('DEL', skey(m))
        if not s.r and live(s, n) then count = count + 1 end
      end
      redis.call('ZREM', ok, m)
    end
  end
  return count
elseif op == 'upsert' then
  -- express-session's set. ARGV: op, remaining ms or 'n', count, pairs.
  local map = {}
  readPairs(map, 3, tonumber(A[3]))
  local s, old = loadAll(key)
  if s and not s.r and live(s, n) then
    clearFields(key, old)
    writeData(key, map)
    s.t = n
    redis.call('HSET', key, 't', n)
    setLifetime(key, s, ownLifetime(A[2], s, n))
    seal(key, s)
    return { 1 }
  end
  -- A dead or renewed row under that key is never revived.
  if s then return { 0 } end
  s = { c = n, t = n, o = false, r = false, m = false }
  redis.call('HSET', key, 'c', n, 't', n)
  writeData(key, map)
  setLifetime(key, s, ownLifetime(A[2], s, n))
  seal(key, s)
  return { 1 }
elseif op == 'touchKey' then
  -- express-session's touch. ARGV: op, remaining ms or 'n', the cookie's JSON or '' (none).
  local s = find(key, n)
  if s == nil or s == 'renewed' then return { 0 } end
  local m = ownLifetime(A[2], s, n)
  local ns = { c = s.c, t = s.t, o = s.o, r = false, m = m }
  if not FIXED then ns.t = n end
  if math.abs(idle(ns) - idle(s)) < touchAfter(m) then return { 1 } end
  redis.call('HSET', key, 't', ns.t)
  setLifetime(key, ns, m)
  if A[3] ~= '' then redis.call('HSET', key, '."cookie"', A[3]) end
  seal(key, ns)
  return { 1 }
elseif op == 'page' then
  -- A page of a SCAN, judged: A[2] 'count' (live sessions), 'all'
  -- (their data), 'stats' (live and dead).
  local what = A[2]
  local out = {}
  local liveCount, dead = 0, 0
  for _, k in ipairs(K) do
    place(k)
    local s = load(k)
    if s then
      if live(s, n) then
        if not s.r then
          liveCount = liveCount + 1
          if what == 'all' then out[#out + 1] = flatData({}, dataOf(k)) end
        end
      else
        dead = dead + 1
      end
    end
  end
  if what == 'all' then return out end
  return { liveCount, dead }
elseif op == 'sweep' then
  -- A page of the sweep (KEYS: session keys): dead sessions and tombstones
  -- are deleted (and leave their owner's index); returns { deleted, live }.
  local deleted, liveCount = 0, 0
  for _, k in ipairs(K) do
    place(k)
    local s = load(k)
    if s then
      if live(s, n) then
        if not s.r then liveCount = liveCount + 1 end
      else
        redis.call('DEL', k)
        if s.o then redis.call('ZREM', okey(s.o), member(k)) end
        deleted = deleted + 1
      end
    end
  end
  return { deleted, liveCount }
elseif op == 'prune' then
  -- The sweep's work on owners' indexes (KEYS): members whose session is
  -- gone, dead or another owner's leave; dead sessions go.
  local removed = 0
  for _, ok in ipairs(K) do
    place(ok)
    local owner = string.sub(ok, #OP + 1)
    for _, m in ipairs(redis.call('ZRANGE', ok, 0, -1)) do
      local s = load(skey(m))
      if not s or s.o ~= owner or not live(s, n) then
        if s and s.o == owner then
          redis.call('DEL', skey(m))
          removed = removed + 1
        end
        redis.call('ZREM', ok, m)
      end
    end
  end
  return removed
elseif op == 'capList' then
  -- A cluster's cap, across groups (engine.ts): the owner's live sessions in
  -- this group but those named (A[3..]: the session being given the owner), as member, touched at.
  local owner = A[2]
  local skip = {}
  for i = 3, #A do skip[A[i]] = true end
  local out = {}
  for _, m in ipairs(redis.call('ZRANGE', okey(owner), 0, -1)) do
    if not skip[m] then
      local s = load(skey(m))
      if s and s.o == owner and not s.r and live(s, n) then
        out[#out + 1] = m
        out[#out + 1] = s.t
      end
    end
  end
  return out
elseif op == 'evict' then
  -- Ends these sessions of the owner (the cap's choice); how many were live.
  local owner = A[2]
  local count = 0
  for i = 3, #A do
    local s = load(skey(A[i]))
    if s and s.o == owner then
      redis.call('DEL', skey(A[i]))
      if not s.r and live(s, n) then count = count + 1 end
    end
    redis.call('ZREM', okey(owner), A[i])
  end
  return count
elseif op == 'groups' then
  -- An owner's groups (KEYS[1]: <table>:g:<owner>), after adding A[2..]
  -- (each scored now: a group is forgotten only long after it was last given).
  for i = 2, #A do redis.call('ZADD', key, n, A[i]) end
  return redis.call('ZRANGE', key, 0, -1)
elseif op == 'forget' then
  -- The sweep: groups (A[3..]) whose owner's index it found gone leave the
  -- owner's list unless given within the last A[2] ms.
  local removed = 0
  for i = 3, #A do
    local at = redis.call('ZSCORE', key, A[i])
    if at and tonumber(at) < n - tonumber(A[2]) then removed = removed + redis.call('ZREM', key, A[i]) end
  end
  return removed
elseif op == 'age' then
  return n
end
return redis.error_reply('unknown store operation ' .. tostring(op))
end

local function run(keys, args)
  K, A, key, op = keys, args, keys[1], args[1]
  if key then place(key) end
  return dispatch()
end

-- A mailbox batch in one script call (one command, one round trip): ARGV is
-- 'batch' (or 'batch!'), the number of calls, each call's key and argument
-- counts, then every call's arguments; KEYS every call's keys, in order. Each
-- call runs under pcall: one that fails fails alone ({ '!ERR', message }).
-- A batch with writes ('batch!') carries the key of its writes' replies
-- (its last key): the same batch sent again after a lost connection gets the
-- replies of the writes that already ran instead of running them twice (a
-- patch twice could undo another app server's write in between; a create
-- twice could bring back a session revoked in between); its reads run again.
local WRITES = { create = true, put = true, patch = true, renew = true, delete = true, revoke = true, revokeAll = true, upsert = true, touchKey = true, evict = true }
if ARGV[1] == 'batch' or ARGV[1] == 'batch!' then
  local replyKey = nil
  local cached = nil
  if ARGV[1] == 'batch!' then
    replyKey = KEYS[#KEYS]
    local stored = redis.call('GET', replyKey)
    if stored then cached = cjson.decode(stored) end
  end
  local count = tonumber(ARGV[2])
  local ki, ai = 1, 3 + 2 * count
  local out = {}
  for i = 1, count do
    local nk, na = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    local keys, args = {}, {}
    for j = 1, nk do keys[j] = KEYS[ki + j - 1] end
    for j = 1, na do args[j] = ARGV[ai + j - 1] end
    ki, ai = ki + nk, ai + na
    if cached and cached[i] ~= '!READ' then
      out[i] = cached[i]
    else
      local ok, reply = pcall(run, keys, args)
      if not ok then
        -- A failed redis.call raises a table with the server's error in err.
        if type(reply) == 'table' and reply.err then reply = reply.err end
        out[i] = { '!ERR', tostring(reply) }
      elseif type(reply) == 'table' and reply.err then
        out[i] = { '!ERR', reply.err }
      else
        out[i] = reply
      end
    end
  end
  -- The last element says whether the replies are stored under the reply
  -- key (engine.ts checks the key after WAIT only then).
  local stored = 0
  if cached then stored = 1 end
  if replyKey and not cached then
    -- Only the writes' replies are kept (a read's may hold a whole session),
    -- and not a call that failed (a slot migrating): a replay runs it again.
    local writes = {}
    local at = 3 + 2 * count
    for i = 1, count do
      local op = ARGV[at]
      local failed = type(out[i]) == 'table' and out[i][1] == '!ERR'
      if WRITES[op] and not failed then writes[i] = out[i] else writes[i] = '!READ' end
      at = at + tonumber(ARGV[2 + 2 * i])
    end
    -- Out of memory (noeviction) or a replica: the batch's calls answered
    -- for themselves above; without the key, a replay runs again.
    local set = redis.pcall('SET', replyKey, cjson.encode(writes), 'PX', REPLYTTL)
    if type(set) == 'table' and set.ok then stored = 1 end
  end
  out[count + 1] = stored
  return out
end
return run(KEYS, ARGV)
`;
