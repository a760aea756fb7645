// The server-side scripts of the site directory. Each touches exactly one
// key (KEYS[1]), so each runs on a Redis Cluster as on one server, and each
// is atomic: no other client's command runs between its GET and its SET.
// They read only the record header (site-record.ts: format, kind, version,
// origin node); Redis's Lua has `struct` for that. A value that is not a
// record of format 1 is never overwritten (a newer format written during an
// upgrade, or a stranger's value): the script answers 2 and the caller
// counts it.
//
// The common claim is not a script but `SET key value NX GET PX ttl` with
// `PTTL key` pipelined behind it (redis-connection.ts setNxGet): Redis 7.0 tells a
// writer of its own scripted writes despite NOLOOP, not of plain ones.
import { createHash } from 'node:crypto';

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
}

function script(name: string, source: string): Script {
  return { name, source, sha1: createHash('sha1').update(source).digest('hex') };
}

// is_record(v): a value of format 1 with a whole header.
// newer(a, b): a beats b by the version rule (version, then origin node).
const COMMON = `
local function is_record(v)
  return string.len(v) >= 11 and string.byte(v, 1) == 1
end
local function newer(a, b)
  local _, _, av, ao = struct.unpack('>BBI4I4', a)
  local _, _, bv, bo = struct.unpack('>BBI4I4', b)
  return av > bv or (av == bv and ao > bo)
end
`;

/**
 * First writer wins over a withdraw marker (a plain `SET NX GET` cannot
 * replace one): the claim path uses it only when `SET NX GET` found a
 * marker. ARGV[1]: the record, ARGV[2]: its lifetime in ms.
 * Stored if the key holds nothing, or a withdraw marker (kind 2) that the
 * record beats by the version rule. Returns {1} when stored; {0, current,
 * PTTL} when another record is there (the winner, or a marker the caller
 * must out-version); {2, current} when the value is not a record.
 */
export const CLAIM = script(
  'claim',
  `${COMMON}
local cur = redis.call('GET', KEYS[1])
if cur then
  if not is_record(cur) then return {2, cur} end
  if string.byte(cur, 2) ~= 2 or not newer(ARGV[1], cur) then
    return {0, cur, redis.call('PTTL', KEYS[1])}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
`,
);

/**
 * The version rule: moves, withdraws, reconciliation. ARGV as CLAIM.
 * Stored if the key holds nothing or a record the new one beats. Returns
 * {1, replaced record or nil} when stored; {0, current, PTTL} when the
 * current record is as new or newer; {2, current} when it is not a record.
 */
export const STORE = script(
  'store',
  `${COMMON}
local cur = redis.call('GET', KEYS[1])
if cur then
  if not is_record(cur) then return {2, cur} end
  if not newer(ARGV[1], cur) then
    return {0, cur, redis.call('PTTL', KEYS[1])}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, cur}
`,
);

/** A record and its remaining lifetime in one atomic read: {value, PTTL}, or {} for no key. */
export const READ = script(
  'read',
  `
local cur = redis.call('GET', KEYS[1])
if not cur then return {} end
return {cur, redis.call('PTTL', KEYS[1])}
`,
);

export const SCRIPTS = [CLAIM, STORE, READ] as const;
