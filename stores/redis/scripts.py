"""Lua scripts: each store write (and each page read) is one atomic script call.

Scripts receive the user's fixed keys in KEYS (so redis-py routes them to the slot of
`{<user_id>}` on a cluster) and the key prefix in ARGV[1]; per-thread and
per-attachment key names are derived from that prefix inside the script, and so stay
in the same slot. The layout is documented in `stores.redis.keys`.

Thread TTL (ARGV `ttl` > 0): every write to a thread re-arms the expiry of all of its
keys, of the attachments bound to it and of the user's thread index, sequence counter
and attachment set, so indexes always outlive what they point to; index entries of
threads that expired are pruned when a page meets them.
"""

from __future__ import annotations

from memory.models import MAX_MEMORY_CHANGES
from memory.ranking import CATEGORY_WEIGHT, FIELD_CATEGORY, FIELD_KEY, FIELD_VALUE, KEY_WEIGHT, VALUE_WEIGHT

_COMMON = r"""
local function thread_keys(prefix, tid)
  local t = prefix .. 't:' .. tid
  return {t, t .. ':items', t .. ':ipos', t .. ':idata', t .. ':atts'}
end

local function touch_thread(prefix, tid, ttl)
  if ttl <= 0 then return end
  for _, k in ipairs(thread_keys(prefix, tid)) do redis.call('EXPIRE', k, ttl) end
  for _, k in ipairs({prefix .. 'threads', prefix .. 'seq', prefix .. 'atts'}) do
    redis.call('EXPIRE', k, ttl)
  end
  for _, aid in ipairs(redis.call('SMEMBERS', prefix .. 't:' .. tid .. ':atts')) do
    redis.call('EXPIRE', prefix .. 'a:' .. aid, ttl)
  end
end

local function lex_range(key, cursor, count, desc)
  if desc then
    local start = '+'
    if cursor then start = '(' .. cursor end
    return redis.call('ZRANGE', key, start, '-', 'BYLEX', 'REV', 'LIMIT', 0, count)
  end
  local start = '-'
  if cursor then start = '(' .. cursor end
  return redis.call('ZRANGE', key, start, '+', 'BYLEX', 'LIMIT', 0, count)
end

-- The one page loop of every index (threads, items): walk `index` from `cursor` (a
-- member, or false for the start) and collect up to limit + 1 bodies. `fetch(batch)`
-- returns, for each member of a batch, its body or false when the body is gone (an
-- expired thread, an evicted item); `fetch` prunes those, so the walk goes on past
-- them and one lost body never shortens or breaks a page. Returns the reply the
-- Python side reads: {has_more, body...}.
local function page(index, cursor, limit, desc, fetch)
  local rows = {}
  while true do
    local want = limit + 1 - #rows
    local batch = lex_range(index, cursor, want, desc)
    if #batch > 0 then
      local bodies = fetch(batch)
      for i, member in ipairs(batch) do
        if bodies[i] then rows[#rows + 1] = bodies[i] end
      end
      cursor = batch[#batch]
    end
    if #rows > limit or #batch < want then break end
  end
  local result = {0}
  if #rows > limit then result[1] = 1; rows[#rows] = nil end
  for _, row in ipairs(rows) do result[#result + 1] = row end
  return result
end
"""

# KEYS: threads, thread, seq   ARGV: prefix, thread id, encoded sort key, data, ttl
PUT_THREAD = (
    _COMMON
    + r"""
local pos = redis.call('HGET', KEYS[2], 'pos')
if not pos then
  local seq = redis.call('INCR', KEYS[3])
  pos = ARGV[3] .. string.format('%016x', seq) .. ARGV[2]
  redis.call('ZADD', KEYS[1], 0, pos)
end
redis.call('HSET', KEYS[2], 'pos', pos, 'meta', ARGV[4])
touch_thread(ARGV[1], ARGV[2], tonumber(ARGV[5]))
return 1
"""
)

# KEYS: threads   ARGV: prefix, cursor thread id or "", limit, "1" for descending
# -> {has_more, thread JSON...}
PAGE_THREADS = (
    _COMMON
    + r"""
local prefix, limit, desc = ARGV[1], tonumber(ARGV[3]), ARGV[4] == '1'
local cursor = false
if ARGV[2] ~= '' then
  cursor = redis.call('HGET', prefix .. 't:' .. ARGV[2], 'pos')
  if not cursor then return {0} end
end
return page(KEYS[1], cursor, limit, desc, function(batch)
  local bodies = {}
  for i, member in ipairs(batch) do
    local tid = string.sub(member, 33)
    local found = redis.call('HMGET', prefix .. 't:' .. tid, 'pos', 'meta')
    if found[1] == member then
      bodies[i] = found[2]
    else
      bodies[i] = false
      -- left behind by an expired thread (TTL): prune it, and the rest of that thread
      redis.call('ZREM', KEYS[1], member)
      if not found[1] then
        local keys = thread_keys(prefix, tid)
        redis.call('DEL', keys[2], keys[3], keys[4], keys[5])
      end
    end
  end
  return bodies
end)
"""
)

# KEYS: threads, thread, items, ipos, idata, thread atts, atts   ARGV: prefix, thread id
# -> ids of the attachments that were bound to the thread (deleted with it)
DELETE_THREAD = r"""
local gone = {}
for _, aid in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  local akey = ARGV[1] .. 'a:' .. aid
  if redis.call('HGET', akey, 'thread') == ARGV[2] then
    redis.call('DEL', akey)
    redis.call('SREM', KEYS[7], aid)
    gone[#gone + 1] = aid
  end
end
local pos = redis.call('HGET', KEYS[2], 'pos')
if pos then redis.call('ZREM', KEYS[1], pos) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return gone
"""

# KEYS: thread, items, ipos, idata, seq   ARGV: prefix, thread id, item id, encoded sort key, data, ttl
# -> 1 stored, 0 thread missing (nothing written)
PUT_ITEM = (
    _COMMON
    + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local pos = redis.call('HGET', KEYS[3], ARGV[3])
if not pos then
  local seq = redis.call('INCR', KEYS[5])
  pos = ARGV[4] .. string.format('%016x', seq) .. ARGV[3]
  redis.call('ZADD', KEYS[2], 0, pos)
  redis.call('HSET', KEYS[3], ARGV[3], pos)
end
redis.call('HSET', KEYS[4], ARGV[3], ARGV[5])
touch_thread(ARGV[1], ARGV[2], tonumber(ARGV[6]))
return 1
"""
)

# KEYS: thread, items, ipos, idata   ARGV: cursor item id or "", limit, "1" for descending
# -> {has_more, item JSON...}; a missing thread or unknown cursor gives {0}
# An item whose body is gone (its :idata field or the whole hash evicted, e.g. under
# volatile-lru) is pruned from the index and skipped, so one lost body never breaks a page.
PAGE_ITEMS = (
    _COMMON
    + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local limit, desc = tonumber(ARGV[2]), ARGV[3] == '1'
local cursor = false
if ARGV[1] ~= '' then
  cursor = redis.call('HGET', KEYS[3], ARGV[1])
  if not cursor then return {0} end
end
return page(KEYS[2], cursor, limit, desc, function(batch)
  local ids = {}
  for i, member in ipairs(batch) do ids[i] = string.sub(member, 33) end
  local bodies = redis.call('HMGET', KEYS[4], unpack(ids))
  for i, member in ipairs(batch) do
    if not bodies[i] then
      redis.call('ZREM', KEYS[2], member)
      redis.call('HDEL', KEYS[3], ids[i])
    end
  end
  return bodies
end)
"""
)

# KEYS: thread, items, ipos, idata   ARGV: prefix, thread id, item id, ttl
DELETE_ITEM = (
    _COMMON
    + r"""
local pos = redis.call('HGET', KEYS[3], ARGV[3])
if not pos then return 0 end
redis.call('ZREM', KEYS[2], pos)
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
touch_thread(ARGV[1], ARGV[2], tonumber(ARGV[4]))
return 1
"""
)

# KEYS: attachment, atts   ARGV: prefix, attachment id, thread id or "", data, ttl
PUT_ATTACHMENT = r"""
local prefix, aid, tid, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local old = redis.call('HGET', KEYS[1], 'thread')
if old and old ~= '' and old ~= tid then
  redis.call('SREM', prefix .. 't:' .. old .. ':atts', aid)
end
redis.call('HSET', KEYS[1], 'data', ARGV[4], 'thread', tid)
redis.call('SADD', KEYS[2], aid)
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
if tid ~= '' then
  local set = prefix .. 't:' .. tid .. ':atts'
  redis.call('SADD', set, aid)
  if ttl > 0 then
    redis.call('EXPIRE', set, ttl)
    redis.call('EXPIRE', prefix .. 'threads', ttl)
  end
end
return 1
"""

# KEYS: attachment, atts   ARGV: prefix, attachment id   -> 1 if it existed
DELETE_ATTACHMENT = r"""
local tid = redis.call('HGET', KEYS[1], 'thread')
redis.call('SREM', KEYS[2], ARGV[2])
if not tid then return 0 end
if tid ~= '' then redis.call('SREM', ARGV[1] .. 't:' .. tid .. ':atts', ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: atts   ARGV: prefix   -> every attachment JSON (ids whose key expired are pruned)
LIST_ATTACHMENTS = r"""
local result = {}
for _, aid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local data = redis.call('HGET', ARGV[1] .. 'a:' .. aid, 'data')
  if data then result[#result + 1] = data else redis.call('SREM', KEYS[1], aid) end
end
return result
"""

# The search index of a user's memories (issue 12), all keys in the user's slot:
#   <prefix>mt:<term>  HASH  `<category>:<key>` -> `<field>:<updated_us>:<memory id>`
#   <prefix>mterms     HASH  `<category>:<key>` -> the memory's terms, space-separated
#   <prefix>mix        STRING "1" once every memory of the user is indexed (older data is
#                      indexed lazily by the first search, see RedisMemoryStore._build_index)
# Terms are word characters only (memory.ranking.tokenize): never `:`, `{`, `}` or spaces.
_MEMORY_INDEX = r"""
local function unindex_memory(prefix, field)
  local old = redis.call('HGET', prefix .. 'mterms', field)
  if not old then return end
  for term in string.gmatch(old, '%S+') do redis.call('HDEL', prefix .. 'mt:' .. term, field) end
  redis.call('HDEL', prefix .. 'mterms', field)
end

-- flat: term, field code, term, field code, ...
local function index_memory(prefix, field, posting_tail, flat)
  local terms = {}
  for i = 1, #flat, 2 do
    redis.call('HSET', prefix .. 'mt:' .. flat[i], field, flat[i + 1] .. ':' .. posting_tail)
    terms[#terms + 1] = flat[i]
  end
  if #terms > 0 then redis.call('HSET', prefix .. 'mterms', field, table.concat(terms, ' ')) end
end
"""

# The memory audit trail (issue 10): <prefix>memlog is a LIST of MemoryChange JSON, newest
# first, trimmed to MAX_MEMORY_CHANGES. `change_json` comes from Python; the script fills in
# what only it knows (op, memory id; for a write touching several memories their
# category/key and an id `<change id>.<n>`).
_RECORD = (
    r"""
local MAX_CHANGES = """
    + str(MAX_MEMORY_CHANGES)
    + r"""
local function record(log, change_json, op, memory, n)
  local c = cjson.decode(change_json)
  c.op = op
  c.memory_id = memory.id
  if n then
    c.id = c.id .. '.' .. n
    c.category = memory.category
    c.key = memory.key
  end
  redis.call('LPUSH', log, cjson.encode(c))
  redis.call('LTRIM', log, 0, MAX_CHANGES - 1)
end
"""
)

# KEYS: memories, memlog   ARGV: field, new id, user id, category, key, value, source, thread id, item id, now,
#   prefix, updated_us, change JSON, then term, field code pairs
# ("" = none for source/thread id/item id: none of them can be empty when given)
# -> the stored memory JSON (id and created_at kept on update; memories stored by older
# releases lack thread_id/item_id, which read back as None)
UPSERT_MEMORY = (
    _MEMORY_INDEX
    + _RECORD
    + r"""
local prefix = ARGV[11]
local old = redis.call('HGET', KEYS[1], ARGV[1])
local m
if old then
  m = cjson.decode(old)
else
  if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SET', prefix .. 'mix', '1') end
  m = {id = ARGV[2], user_id = ARGV[3], category = ARGV[4], key = ARGV[5], created_at = ARGV[10]}
end
m.value = ARGV[6]
local function opt(v) if v == '' then return cjson.null end return v end
m.source = opt(ARGV[7])
m.thread_id = opt(ARGV[8])
m.item_id = opt(ARGV[9])
m.updated_at = ARGV[10]
local encoded = cjson.encode(m)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
unindex_memory(prefix, ARGV[1])
index_memory(prefix, ARGV[1], ARGV[12] .. ':' .. m.id, {unpack(ARGV, 14)})
if old then record(KEYS[2], ARGV[13], 'update', m) else record(KEYS[2], ARGV[13], 'remember', m) end
return encoded
"""
)

# KEYS: memories, memlog   ARGV: field, prefix, expected JSON or "" (any), change JSON   -> 1 if deleted
# With an expected JSON the memory is deleted only if it is still exactly that version (retention).
DELETE_MEMORY = (
    _MEMORY_INDEX
    + _RECORD
    + r"""
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or (ARGV[3] ~= '' and old ~= ARGV[3]) then return 0 end
unindex_memory(ARGV[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
record(KEYS[2], ARGV[4], 'forget', cjson.decode(old))
return 1
"""
)

# KEYS: memories, index marker   ARGV: prefix, term...
# -> {indexed 0/1, memory count, then per term: number of postings, field, posting, ...}
SEARCH_POSTINGS = r"""
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 0} end
local out = {1, redis.call('HLEN', KEYS[1])}
for i = 2, #ARGV do
  local flat = redis.call('HGETALL', ARGV[1] .. 'mt:' .. ARGV[i])
  out[#out + 1] = #flat / 2
  for j = 1, #flat do out[#out + 1] = flat[j] end
end
return out
"""

# KEYS: memories, index marker   ARGV: prefix, limit, band, term... (sorted, at most 26)
# -> {0} if the user's memories are not indexed yet, else {1, memory count, document
# frequency of each term, then per candidate: field, packed field codes, posting, memory JSON}.
# Scores every memory matching a term (approximately: Lua's log and sum order), keeps those
# that can be in the top `limit` (a band below the k-th score, at most `limit` per field
# pattern), and lets Python rank them exactly (memory.ranking.rank_candidates).
SEARCH_CANDIDATES = (
    f"""
local weights = {{[{FIELD_KEY}] = {KEY_WEIGHT}, [{FIELD_CATEGORY}] = {CATEGORY_WEIGHT},
  [{FIELD_VALUE}] = {VALUE_WEIGHT}}}
"""
    + r"""
if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
local prefix, limit, band = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = redis.call('HLEN', KEYS[1])
local out = {1, n}
local score, packed, posting = {}, {}, {}
for i = 4, #ARGV do
  local flat = redis.call('HGETALL', prefix .. 'mt:' .. ARGV[i])
  local df = #flat / 2
  out[#out + 1] = df
  if df > 0 then
    local idf = math.log(1 + n / df)
    local shift = 4 ^ (i - 4)
    for j = 1, #flat, 2 do
      local field, value = flat[j], flat[j + 1]
      local code = tonumber(string.sub(value, 1, 1))
      score[field] = (score[field] or 0) + weights[code] * idf
      packed[field] = (packed[field] or 0) + code * shift
      posting[field] = value
    end
  end
end
local all = {}
for _, s in pairs(score) do all[#all + 1] = s end
table.sort(all)
local floor = -math.huge
if #all >= limit then floor = all[#all - limit + 1] - band end
local groups = {}
for field, s in pairs(score) do
  if s >= floor then
    local p = packed[field]
    local _, _, us, id = string.find(posting[field], '^%d:(%d+):(.*)$')
    groups[p] = groups[p] or {}
    table.insert(groups[p], {field, tonumber(us), id})
  end
end
for p, members in pairs(groups) do
  table.sort(members, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[3] < b[3]
  end)
  for k = 1, math.min(limit, #members) do
    local field = members[k][1]
    out[#out + 1] = field
    out[#out + 1] = p
    out[#out + 1] = posting[field]
    out[#out + 1] = redis.call('HGET', KEYS[1], field)
  end
end
return out
"""
)

# KEYS: memories, index marker   ARGV: prefix, "1" to set the marker at the end, then per memory:
#   field, JSON it was indexed from, updated_us, number of pairs, term, field code, ...
# Indexes memories that are unchanged since they were read (a memory written meanwhile was
# indexed by its own write), then marks the user's memories as indexed.
INDEX_MEMORIES = (
    _MEMORY_INDEX
    + r"""
local prefix, i = ARGV[1], 3
while i <= #ARGV do
  local field, snapshot, updated_us, pairs = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local flat = {unpack(ARGV, i + 4, i + 3 + 2 * pairs)}
  if redis.call('HGET', KEYS[1], field) == snapshot then
    unindex_memory(prefix, field)
    index_memory(prefix, field, updated_us .. ':' .. cjson.decode(snapshot).id, flat)
  end
  i = i + 4 + 2 * pairs
end
if ARGV[2] == '1' then redis.call('SET', KEYS[2], '1') end
return 1
"""
)

# KEYS: memories, memlog   ARGV: thread id, prefix, change JSON
# -> number of memories deleted (those learned in that thread); one audit entry each
DELETE_MEMORIES_FROM = (
    _MEMORY_INDEX
    + _RECORD
    + r"""
local gone, forgotten = {}, {}
local rows = redis.call('HGETALL', KEYS[1])
for i = 1, #rows, 2 do
  local m = cjson.decode(rows[i + 1])
  if m.thread_id == ARGV[1] then
    gone[#gone + 1] = rows[i]
    forgotten[#forgotten + 1] = m
  end
end
for i = 1, #gone, 500 do
  redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 499, #gone)))
end
for _, field in ipairs(gone) do unindex_memory(ARGV[2], field) end
table.sort(forgotten, function(a, b) return a.category .. ':' .. a.key < b.category .. ':' .. b.key end)
for n, m in ipairs(forgotten) do record(KEYS[2], ARGV[3], 'forget', m, n) end
return #gone
"""
)

# KEYS: profile   ARGV: user id, enabled ("1"/"0"), now
# -> flat HGETALL; creates the profile (not as a first login) when missing
SET_MEMORY_ENABLED = r"""
if redis.call('HSETNX', KEYS[1], 'created_at', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'first', '0', 'last_seen_at', ARGV[3])
end
redis.call('HSET', KEYS[1], 'memory_enabled', ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: profile   ARGV: user id, has identity, identity, has email, email, now, memory enabled ("1"/"0")
# -> flat HGETALL of the profile; field `first` is "1" only for the call that created it.
# Profiles stored by older releases lack `memory_enabled` (memory on).
ENSURE_PROFILE = r"""
if redis.call('HSETNX', KEYS[1], 'created_at', ARGV[6]) == 1 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'first', '1', 'last_seen_at', ARGV[6], 'memory_enabled', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'first', '0', 'last_seen_at', ARGV[6])
end
if ARGV[2] == '1' then redis.call('HSETNX', KEYS[1], 'identity', ARGV[3]) end
if ARGV[4] == '1' then redis.call('HSETNX', KEYS[1], 'email', ARGV[5]) end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: threads, atts, seq, memories, profile, memory terms, index marker, memlog   ARGV: prefix
# -> number of keys deleted. Every other key of the user is reachable from the thread
# index, the attachment set or the memory terms.
FORGET_USER = (
    _COMMON
    + r"""
local prefix, deleted = ARGV[1], 0
local function drop(keys)
  for i = 1, #keys, 500 do
    deleted = deleted + redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
  end
end
local keys = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for _, k in ipairs(thread_keys(prefix, string.sub(member, 33))) do keys[#keys + 1] = k end
end
for _, aid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local akey = prefix .. 'a:' .. aid
  local tid = redis.call('HGET', akey, 'thread')
  if tid and tid ~= '' then keys[#keys + 1] = prefix .. 't:' .. tid .. ':atts' end
  keys[#keys + 1] = akey
end
local terms = {}
for _, list in ipairs(redis.call('HVALS', prefix .. 'mterms')) do
  for term in string.gmatch(list, '%S+') do terms[term] = true end
end
for term in pairs(terms) do keys[#keys + 1] = prefix .. 'mt:' .. term end
for i = 1, #KEYS do keys[#keys + 1] = KEYS[i] end
drop(keys)
return deleted
"""
)

# KEYS: list   ARGV: its new elements, first to last (one atomic replacement)
REPLACE_LIST = r"""
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
return #ARGV
"""

ALL = {
    "replace_list": REPLACE_LIST,
    "put_thread": PUT_THREAD,
    "page_threads": PAGE_THREADS,
    "delete_thread": DELETE_THREAD,
    "put_item": PUT_ITEM,
    "page_items": PAGE_ITEMS,
    "delete_item": DELETE_ITEM,
    "put_attachment": PUT_ATTACHMENT,
    "delete_attachment": DELETE_ATTACHMENT,
    "list_attachments": LIST_ATTACHMENTS,
    "upsert_memory": UPSERT_MEMORY,
    "delete_memories_from": DELETE_MEMORIES_FROM,
    "set_memory_enabled": SET_MEMORY_ENABLED,
    "delete_memory": DELETE_MEMORY,
    "search_postings": SEARCH_POSTINGS,
    "search_candidates": SEARCH_CANDIDATES,
    "index_memories": INDEX_MEMORIES,
    "ensure_profile": ENSURE_PROFILE,
    "forget_user": FORGET_USER,
}
