-- Wireshark / tshark dissector for the affinityd cluster protocol
-- (docs/protocol.md). Install: copy to ~/.local/lib/wireshark/plugins/, or
--   tshark -X lua_script:contrib/affinityd.lua -r capture.pcap
-- The group port is a preference (Edit > Preferences > Protocols > AFFINITYD);
-- frames on other ports (REPLYs to a querier's own port) are found by a
-- heuristic on the magic, version and length.
--
-- Bodies of all nine types are decoded field by field (proto/affinity.proto,
-- docs/capture.md has the field table): client keys in their text form
-- (affinityd.client, e.g. 2:192.0.2.7/alice), endpoints (affinityd.endpoint,
-- name=address:port), versions, origins, query, claim and request ids, answer
-- ranks, sync cursors, digest buckets, HELLO state, interval, entries and
-- ready_for_ms. A QUERY, REPLY, UPDATE or CLAIM about several clients shows
-- each of them (more_keys, more_entries, proposals) and their number
-- (affinityd.clients). Filter with them, e.g.
--   tshark ... -Y 'affinityd.client contains "alice"' -T fields -e affinityd.endpoint
-- A body that breaks the wire rules (docs/protocol.md section 7.2) is marked
-- (expert info "malformed body"); the limits of section 8 and the tag are not
-- checked here (the tag needs the cluster key: affinityd capture --key-file
-- gives a node's verdict).

local p = Proto("affinityd", "affinityd cluster protocol")

local types = { [1] = "QUERY", [2] = "REPLY", [3] = "UPDATE", [4] = "SYNC_REQUEST", [5] = "SYNC_CHUNK", [6] = "WITHDRAW", [7] = "DIGEST", [8] = "CLAIM", [9] = "HELLO" }
local states = { [0] = "STARTING", [1] = "READY", [2] = "STOPPING" }
local classes = { [0] = "null", [1] = "locally assigned", [2] = "IPv4 address", [3] = "IEEE 802.1 MAC address", [4] = "PPP magic-number block", [5] = "directory number" }

local f = {
  magic = ProtoField.uint16("affinityd.magic", "Magic", base.HEX),
  version = ProtoField.uint8("affinityd.version", "Version"),
  type = ProtoField.uint8("affinityd.type", "Type", base.DEC, types),
  key_id = ProtoField.uint16("affinityd.key_id", "Key id"),
  body_length = ProtoField.uint16("affinityd.body_length", "Body length"),
  sender = ProtoField.uint32("affinityd.sender", "Sender node"),
  epoch = ProtoField.uint32("affinityd.boot_epoch", "Boot epoch"),
  sequence = ProtoField.uint64("affinityd.sequence", "Sequence"),
  timestamp = ProtoField.uint64("affinityd.timestamp", "Timestamp (ms since 1970)"),
  body = ProtoField.bytes("affinityd.body", "Body (protobuf, proto/affinity.proto)"),
  tag = ProtoField.bytes("affinityd.tag", "Tag (HMAC-SHA256, 128 bits)"),
  -- body fields
  client = ProtoField.string("affinityd.client", "Client key"),
  client_class = ProtoField.uint32("affinityd.client.class", "Discriminator class", base.DEC, classes),
  client_address = ProtoField.bytes("affinityd.client.address", "Discriminator address"),
  client_username = ProtoField.string("affinityd.client.username", "Username"),
  endpoint = ProtoField.string("affinityd.endpoint", "Endpoint"),
  endpoint_address = ProtoField.string("affinityd.endpoint.address", "Endpoint address"),
  endpoint_port = ProtoField.uint32("affinityd.endpoint.port", "Endpoint port"),
  endpoint_name = ProtoField.string("affinityd.endpoint.name", "Endpoint name"),
  entry = ProtoField.bytes("affinityd.entry", "Entry"),
  entry_version = ProtoField.uint32("affinityd.entry.version", "Version"),
  origin = ProtoField.uint32("affinityd.origin", "Origin node"),
  ttl = ProtoField.uint32("affinityd.ttl", "Remaining lifetime (s; 0: the receiver's default)"),
  query_id = ProtoField.uint32("affinityd.query_id", "Query id"),
  answer_rank = ProtoField.uint32("affinityd.answer_rank", "Answer rank (0: every node answers; k: only those ranked below k)"),
  claim_id = ProtoField.uint32("affinityd.claim_id", "Claim id (echoed as the REPLY's query id)"),
  state = ProtoField.uint32("affinityd.state", "Node state", base.DEC, states),
  interval_ms = ProtoField.uint32("affinityd.interval_ms", "HELLO interval (ms)"),
  ready_for_ms = ProtoField.uint32("affinityd.ready_for_ms", "Ready for (ms)"),
  clients = ProtoField.uint32("affinityd.clients", "Clients in this message"),
  request_id = ProtoField.uint32("affinityd.request_id", "Request id"),
  cursor = ProtoField.uint32("affinityd.cursor", "Cursor"),
  next_cursor = ProtoField.uint32("affinityd.next_cursor", "Next cursor"),
  max_chunks = ProtoField.uint32("affinityd.max_chunks", "Window (chunks)"),
  done = ProtoField.bool("affinityd.done", "Done (the walk reached the end)"),
  bucket_count = ProtoField.uint32("affinityd.bucket_count", "Buckets"),
  buckets = ProtoField.bytes("affinityd.buckets", "Buckets (bitmap or digests)"),
  entries = ProtoField.uint32("affinityd.entries", "Entries (in the sender's table)"),
  withdraw = ProtoField.bytes("affinityd.withdraw", "Withdraw marker"),
  unknown = ProtoField.bytes("affinityd.unknown_field", "Unknown field (skipped)"),
}
p.fields = {}
for _, v in pairs(f) do table.insert(p.fields, v) end

local malformed = ProtoExpert.new("affinityd.malformed", "malformed body", expert.group.MALFORMED, expert.severity.ERROR)
p.experts = { malformed }

p.prefs.port = Pref.uint("UDP port", 7447, "The cluster's multicast group port")

-- Protobuf wire reading over a TvbRange: returns nil where a rule of
-- docs/protocol.md section 7.2 is broken.
local function varint(tvb, off, stop, maxlen)
  local v, mul = 0, 1
  for i = 0, maxlen - 1 do
    if off + i >= stop then return nil end
    local b = tvb(off + i, 1):uint()
    v = v + (b % 128) * mul
    mul = mul * 128
    if b < 128 then return v, off + i + 1 end
  end
  return nil
end

-- fields(tvb, off, stop) -> list of {num, wire, off, len, value} or nil
local function fields(tvb, off, stop)
  local out = {}
  while off < stop do
    local key, o = varint(tvb, off, stop, 5)
    if not key then return nil end
    local num, wire = math.floor(key / 8), key % 8
    if num < 1 then return nil end
    local x = { num = num, wire = wire, start = off }
    if wire == 0 then
      local v0 = o
      x.value, o = varint(tvb, o, stop, 10)
      if not x.value then return nil end
      x.off, x.len, x.vlen = x.start, o - x.start, o - v0
    elseif wire == 2 then
      local n
      n, o = varint(tvb, o, stop, 5)
      if not n or o + n > stop then return nil end
      x.off, x.len = o, n
      o = o + n
    elseif wire == 1 or wire == 5 then
      local n = wire == 1 and 8 or 4
      if o + n > stop then return nil end
      x.off, x.len = o, n
      o = o + n
    else
      return nil
    end
    table.insert(out, x)
    off = o
  end
  return out
end

-- a known uint32, enum or bool field: a varint of at most 5 octets and at most 2^32-1
local function u32(x)
  return x.wire == 0 and x.vlen <= 5 and x.value <= 4294967295
end

local function hex(tvb, off, len)
  if len == 0 then return "" end
  return tostring(tvb(off, len):bytes()):lower()
end

local function discriminator(class, tvb, off, len)
  if class == 0 then return "0" end
  if class == 2 and len == 4 then return "2:" .. tostring(tvb(off, 4):ipv4()) end
  if class == 3 and len == 6 then
    local parts = {}
    for i = 0, 5 do parts[#parts + 1] = string.format("%02x", tvb(off + i, 1):uint()) end
    return "3:" .. table.concat(parts, ":")
  end
  if class == 5 then return "5:" .. (len > 0 and tvb(off, len):string() or "") end
  return class .. ":" .. hex(tvb, off, len)
end

-- Each message adds its fields under tree; returns false if malformed.
local decode = {}

function decode.client_key(tvb, off, stop, tree)
  local fs = fields(tvb, off, stop)
  if not fs then return false end
  local class, a_off, a_len, user = 0, off, 0, ""
  local sub = tree:add(tvb(off, math.max(stop - off, 0)), "Client key")
  for _, x in ipairs(fs) do
    if x.num == 1 and u32(x) then class = x.value; sub:add(f.client_class, tvb(x.off, x.len), x.value)
    elseif x.num == 2 and x.wire == 2 then a_off, a_len = x.off, x.len; if x.len > 0 then sub:add(f.client_address, tvb(x.off, x.len)) end
    elseif x.num == 3 and x.wire == 2 then user = x.len > 0 and tvb(x.off, x.len):string(ENC_UTF_8) or ""; sub:add(f.client_username, tvb(x.off, math.max(x.len, 0)), user)
    elseif x.num <= 3 then return false
    end
  end
  local text = discriminator(class, tvb, a_off, a_len) .. "/" .. user
  sub:set_text("Client key: " .. text)
  sub:add(f.client, tvb(off, math.max(stop - off, 0)), text)
  return true, text
end

function decode.endpoint(tvb, off, stop, tree)
  local fs = fields(tvb, off, stop)
  if not fs then return false end
  local addr, port, name = "?", 0, ""
  local sub = tree:add(tvb(off, math.max(stop - off, 0)), "Endpoint")
  for _, x in ipairs(fs) do
    if x.num == 1 and x.wire == 2 then
      if x.len == 4 then addr = tostring(tvb(x.off, 4):ipv4())
      elseif x.len == 16 then addr = "[" .. tostring(tvb(x.off, 16):ipv6()) .. "]"
      else return false end
      sub:add(f.endpoint_address, tvb(x.off, x.len), addr)
    elseif x.num == 2 and u32(x) then port = x.value; sub:add(f.endpoint_port, tvb(x.off, x.len), x.value)
    elseif x.num == 3 and x.wire == 2 then name = x.len > 0 and tvb(x.off, x.len):string(ENC_UTF_8) or ""; sub:add(f.endpoint_name, tvb(x.off, math.max(x.len, 0)), name)
    elseif x.num <= 3 then return false
    end
  end
  local text = name .. "=" .. addr .. ":" .. port
  sub:set_text("Endpoint: " .. text)
  sub:add(f.endpoint, tvb(off, math.max(stop - off, 0)), text)
  return true, text
end

local function uint_field(x, field, tree, tvb)
  if not u32(x) then return false end
  tree:add(field, tvb(x.off, x.len), x.value)
  return true
end

function decode.entry(tvb, off, stop, tree, label)
  local fs = fields(tvb, off, stop)
  if not fs then return false end
  local sub = tree:add(f.entry, tvb(off, stop - off))
  local client, endpoint, version = "?", "?", 0
  for _, x in ipairs(fs) do
    local ok = true
    if x.num == 1 then ok = x.wire == 2; if ok then ok, client = decode.client_key(tvb, x.off, x.off + x.len, sub) end
    elseif x.num == 2 then ok = x.wire == 2; if ok then ok, endpoint = decode.endpoint(tvb, x.off, x.off + x.len, sub) end
    elseif x.num == 3 then ok = uint_field(x, f.entry_version, sub, tvb); version = x.value
    elseif x.num == 4 then ok = uint_field(x, f.origin, sub, tvb)
    elseif x.num == 5 then ok = uint_field(x, f.ttl, sub, tvb)
    end
    if not ok then return false end
  end
  sub:set_text(string.format("%s: %s -> %s v%d", label or "Entry", client or "?", endpoint or "?", version or 0))
  return true, string.format("%s -> %s v%d", client or "?", endpoint or "?", version or 0)
end

function decode.withdraw(tvb, off, stop, tree, top)
  local fs = fields(tvb, off, stop)
  if not fs then return false end
  local sub = top and tree or tree:add(f.withdraw, tvb(off, stop - off))
  local client, version = "?", 0
  for _, x in ipairs(fs) do
    local ok = true
    if x.num == 1 then ok = x.wire == 2; if ok then ok, client = decode.client_key(tvb, x.off, x.off + x.len, sub) end
    elseif x.num == 2 then ok = uint_field(x, f.entry_version, sub, tvb); version = x.value
    elseif x.num == 3 then ok = uint_field(x, f.origin, sub, tvb)
    elseif x.num == 4 then ok = uint_field(x, f.ttl, sub, tvb)
    end
    if not ok then return false end
  end
  if not top then sub:set_text(string.format("Withdraw marker: %s v%d", client or "?", version or 0)) end
  return true, string.format("%s v%d", client or "?", version or 0)
end

-- "first (+n more)", as `affinityd capture` writes a message about several clients
local function more(first, n)
  if n > 1 then return string.format("%s (+%d more)", first or "?", n - 1) end
  return first
end

-- Top-level bodies by type: {field number -> handler}; returns ok, summary text.
local function body(t, tvb, off, stop, tree)
  local fs = fields(tvb, off, stop)
  if not fs then return false end
  local info, n_entries, n_markers, n_clients = nil, 0, 0, 0
  local v = {}
  -- a singular field written twice is merged into one (section 7.2): one client, however often
  local first_seen = false
  local function count(singular)
    if not singular then return 1 end
    if first_seen then return 0 end
    first_seen = true
    return 1
  end
  for _, x in ipairs(fs) do
    if x.wire == 0 then v[x.num] = x.value end
    local ok = true
    local e = x.off + x.len
    local what
    if t == 1 then -- Query: client_key, then each of more_keys
      if x.num == 1 or x.num == 4 then
        ok = x.wire == 2
        if ok then ok, what = decode.client_key(tvb, x.off, e, tree); n_clients = n_clients + count(x.num == 1) end
        if x.num == 1 then info = what elseif not info then info = what end
      elseif x.num == 2 then ok = uint_field(x, f.query_id, tree, tvb)
      elseif x.num == 3 then ok = uint_field(x, f.answer_rank, tree, tvb) end
    elseif t == 2 then -- Reply: entry, then each of more_entries
      if x.num == 1 then ok = uint_field(x, f.query_id, tree, tvb)
      elseif x.num == 2 or x.num == 3 then
        ok = x.wire == 2
        if ok then ok, what = decode.entry(tvb, x.off, e, tree); n_clients = n_clients + count(x.num == 2) end
        if x.num == 2 then info = what elseif not info then info = what end
      end
    elseif t == 3 then -- Update: entry, then each of more_entries
      if x.num == 1 or x.num == 2 then
        ok = x.wire == 2
        if ok then ok, what = decode.entry(tvb, x.off, e, tree); n_clients = n_clients + count(x.num == 1) end
        if x.num == 1 then info = what elseif not info then info = what end
      end
    elseif t == 4 then -- SyncRequest
      if x.num == 1 then ok = uint_field(x, f.request_id, tree, tvb)
      elseif x.num == 2 then ok = uint_field(x, f.cursor, tree, tvb)
      elseif x.num == 3 then ok = uint_field(x, f.max_chunks, tree, tvb)
      elseif x.num == 4 then ok = uint_field(x, f.bucket_count, tree, tvb)
      elseif x.num == 5 then ok = x.wire == 2; if ok and x.len > 0 then tree:add(f.buckets, tvb(x.off, x.len)) end
      elseif x.num == 6 then ok = uint_field(x, f.answer_rank, tree, tvb) end
    elseif t == 5 then -- SyncChunk
      if x.num == 1 then ok = uint_field(x, f.request_id, tree, tvb)
      elseif x.num == 2 then ok = uint_field(x, f.cursor, tree, tvb)
      elseif x.num == 3 then ok = uint_field(x, f.next_cursor, tree, tvb)
      elseif x.num == 4 then ok = u32(x); if ok then tree:add(f.done, tvb(x.off, x.len), x.value ~= 0) end
      elseif x.num == 5 then ok = x.wire == 2; if ok then ok = decode.entry(tvb, x.off, e, tree); n_entries = n_entries + 1 end
      elseif x.num == 6 then ok = x.wire == 2; if ok then ok = decode.withdraw(tvb, x.off, e, tree, false); n_markers = n_markers + 1 end end
      info = string.format("%d entries, %d markers", n_entries, n_markers)
    elseif t == 6 then -- Withdraw
      ok, info = decode.withdraw(tvb, off, stop, tree, true)
      if not ok then return false end
      break
    elseif t == 7 then -- Digest
      if x.num == 1 then ok = uint_field(x, f.bucket_count, tree, tvb)
      elseif x.num == 2 then ok = x.wire == 2; if ok and x.len > 0 then tree:add(f.buckets, tvb(x.off, x.len)) end
      elseif x.num == 3 then ok = uint_field(x, f.entries, tree, tvb) end
    elseif t == 8 then -- Claim: claim_id, proposals
      if x.num == 1 then ok = uint_field(x, f.claim_id, tree, tvb)
      elseif x.num == 2 then
        ok = x.wire == 2
        if ok then ok, what = decode.entry(tvb, x.off, e, tree, "Proposal"); n_clients = n_clients + 1 end
        if not info then info = what end
      end
    elseif t == 9 then -- Hello
      if x.num == 1 then ok = uint_field(x, f.state, tree, tvb)
      elseif x.num == 2 then ok = uint_field(x, f.interval_ms, tree, tvb)
      elseif x.num == 3 then ok = uint_field(x, f.entries, tree, tvb)
      elseif x.num == 4 then ok = uint_field(x, f.ready_for_ms, tree, tvb) end
    end
    if not ok then return false end
  end
  if t == 1 or t == 2 or t == 3 or t == 8 then
    tree:add(f.clients, n_clients):set_generated()
    info = more(info, n_clients)
    if t == 1 and (v[3] or 0) > 0 then info = string.format("%s, rank<%d", info or "?", v[3]) end
    if t == 8 then info = string.format("cid %d: %s", v[1] or 0, info or "no proposal") end
  elseif t == 4 then info = string.format("rid %d from %d x%d%s%s", v[1] or 0, v[2] or 0, v[3] or 0, (v[4] or 0) > 0 and string.format(", %d buckets", v[4]) or "", (v[6] or 0) > 0 and string.format(", rank<%d", v[6]) or "")
  elseif t == 7 then info = string.format("%d buckets, %d entries", v[1] or 0, v[3] or 0)
  elseif t == 9 then
    -- proto3 leaves a field at 0 out: a STARTING HELLO has no state field; show it all the same
    if v[1] == nil then tree:add(f.state, 0):set_generated() end
    local st = states[v[1] or 0] or ("state " .. v[1])
    info = string.format("%s, %d entries, interval %d ms%s", st:lower(), v[3] or 0, v[2] or 0, (v[4] or 0) > 0 and string.format(", ready for %d ms", v[4]) or "")
  end
  return true, info
end

local function looks_like(tvb)
  local n = tvb:len()
  return n >= 48 and n <= 1400 and tvb(0, 2):uint() == 0xafd1 and tvb(2, 1):uint() == 1
    and tvb(6, 2):uint() + 48 == n
end

local function dissect(tvb, pinfo, tree)
  if not looks_like(tvb) then return 0 end
  local n = tvb:len()
  local blen = tvb(6, 2):uint()
  local t = tvb(3, 1):uint()
  pinfo.cols.protocol = "AFFINITYD"
  local info = string.format("%s from node %d, seq %s", types[t] or ("type " .. t), tvb(8, 4):uint(), tostring(tvb(16, 8):uint64()))
  local st = tree:add(p, tvb(), "affinityd " .. (types[t] or tostring(t)))
  st:add(f.magic, tvb(0, 2))
  st:add(f.version, tvb(2, 1))
  st:add(f.type, tvb(3, 1))
  st:add(f.key_id, tvb(4, 2))
  st:add(f.body_length, tvb(6, 2))
  st:add(f.sender, tvb(8, 4))
  st:add(f.epoch, tvb(12, 4))
  st:add(f.sequence, tvb(16, 8))
  st:add(f.timestamp, tvb(24, 8))
  local bt = blen > 0 and st:add(f.body, tvb(32, blen)) or st
  if types[t] then
    local ok, what = body(t, tvb, 32, 32 + blen, bt)
    if not ok then bt:add_proto_expert_info(malformed); info = info .. ": malformed body"
    elseif what then info = info .. ": " .. what end
  end
  pinfo.cols.info = info
  st:add(f.tag, tvb(32 + blen, 16))
  return n
end

function p.dissector(tvb, pinfo, tree) return dissect(tvb, pinfo, tree) end

local registered = 0
local function register()
  local udp = DissectorTable.get("udp.port")
  if registered ~= 0 then udp:remove(registered, p) end
  udp:add(p.prefs.port, p)
  registered = p.prefs.port
end
function p.prefs_changed() register() end
register()

p:register_heuristic("udp", function(tvb, pinfo, tree) return dissect(tvb, pinfo, tree) > 0 end)
