-- Wireshark / tshark dissector for the affinityd cluster protocol
-- (docs/protocol.md). Install: copy to ~/.local/lib/wireshark/plugins/, or
--   tshark -X lua_script:contrib/affinityd.lua -r capture.pcap
-- The group port is a preference (Edit > Preferences > Protocols > AFFINITYD);
-- frames on other ports (REPLYs to a querier's own port) are found by a
-- heuristic on the magic, version and length.

local p = Proto("affinityd", "affinityd cluster protocol")

local types = { [1] = "QUERY", [2] = "REPLY", [3] = "UPDATE", [4] = "SYNC_REQUEST", [5] = "SYNC_CHUNK", [6] = "WITHDRAW", [7] = "DIGEST" }

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
}
p.fields = { f.magic, f.version, f.type, f.key_id, f.body_length, f.sender, f.epoch, f.sequence, f.timestamp, f.body, f.tag }

p.prefs.port = Pref.uint("UDP port", 7447, "The cluster's multicast group port")

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
  pinfo.cols.info = string.format("%s from node %d, seq %s", types[t] or ("type " .. t), tvb(8, 4):uint(), tostring(tvb(16, 8):uint64()))
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
  if blen > 0 then st:add(f.body, tvb(32, blen)) end
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
