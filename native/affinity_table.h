// The affinity table: client key -> (endpoint id, version, origin node,
// created, expires). Fixed capacity chosen at start; no allocation after.
//
// Concurrency (see docs/design.md, "The affinity table"):
// - Readers (Lookup, LookupBatch, Iterate) run on any thread and never block
//   and never wait for a writer: an entry is never modified in place. A
//   writer fills a fresh record and publishes it with one release store into
//   the index slot; readers validate what they copied with the record's
//   sequence counter and the slot, and retry if a record was recycled under
//   them.
// - Writers (Upsert, Remove, Clear, Sweep) take writer_mu_. There are two
//   writer threads in a node (the JS thread and the responder's I/O thread),
//   writes are far rarer than reads, and one writer at a time keeps deletion
//   with tombstone clean-up correct without double-width CAS (which is not
//   lock-free on this target, see ENVIRONMENT.md).
//
// When full: an insert of a new key first reclaims expired entries found in
// a bounded scan; if none, the insert is refused and counted (kFull). Live
// entries are never evicted to make room: evicting a live client would split
// its bundle, while a refused insert only means this directory cannot answer
// for that client (the node that made the entry still can).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "client_key.h"

namespace affinityd {

// endpoint_id of a withdraw marker: the entry was deleted at this version.
// A marker takes part in the version rule (an older UPDATE cannot bring the
// entry back) and in sync and digests, but lookups treat it as a miss.
constexpr uint32_t kWithdrawnEndpoint = 0xFFFFFFFFu;

struct EntryFields {
  uint32_t endpoint_id = 0;
  uint32_t version = 0;
  uint32_t origin_node = 0;
  uint32_t created_s = 0;   // unix seconds
  uint32_t expires_s = 0;   // unix seconds; the entry is dead at this second
};

struct EntryView {
  EntryFields fields;
  uint8_t key_len = 0;
  uint8_t key[kMaxKeyOctets] = {};
};

enum class UpsertResult : uint8_t {
  kInserted = 0,  // new key stored
  kReplaced = 1,  // newer (version, origin) replaced the stored entry
  kIgnored = 2,   // stored entry is as new or newer: version rule keeps it
  kFull = 3,      // no room for a new key (counted)
  kBadKey = 4,    // key length out of range
};

struct TableCounters {
  std::atomic<uint64_t> inserted{0}, replaced{0}, ignored{0}, full{0},
      removed{0}, expired{0}, read_retries{0};
};

class AffinityTable {
 public:
  AffinityTable(uint32_t capacity, uint64_t seed);
  AffinityTable(const AffinityTable&) = delete;
  AffinityTable& operator=(const AffinityTable&) = delete;

  // ---- readers: any thread, never block ----
  // A withdraw marker is a miss unless include_withdrawn.
  bool Lookup(const uint8_t* key, size_t len, uint32_t now_s, EntryView* out, bool include_withdrawn = false) const;
  // keys[i] of lens[i] octets; writes endpoint id (or -1 on a miss) and,
  // when not null, the version and the origin node. Returns the hits.
  size_t LookupBatch(const uint8_t* const* keys, const uint16_t* lens, size_t n, uint32_t now_s,
                     int32_t* endpoints, uint32_t* versions, uint32_t* origins = nullptr) const;
  // Visits live entries and withdraw markers in slot order from *cursor; at
  // most max of them; fn(view, slot). *cursor is advanced; it is SlotCount()
  // when the walk is done.
  template <typename Fn>
  size_t Iterate(size_t* cursor, size_t max, uint32_t now_s, Fn&& fn) const;

  // ---- writers: any thread, serialized ----
  UpsertResult Upsert(const uint8_t* key, size_t len, const EntryFields& f, uint32_t now_s);
  // First writer wins (docs/protocol.md "CLAIM"): stores f unless the key
  // has a live entry of f's version or higher (kIgnored: *winner is that
  // entry); a live withdraw marker (or an older entry) is overtaken, f's
  // version raised above it if need be. *winner is what the key now holds
  // (on kFull: f, unstored).
  UpsertResult Claim(const uint8_t* key, size_t len, EntryFields f, uint32_t now_s, EntryFields* winner);
  bool Remove(const uint8_t* key, size_t len);
  size_t Clear();
  size_t Sweep(uint32_t now_s, size_t max_slots);

  uint32_t Capacity() const { return capacity_; }
  uint32_t Size() const { return live_.load(std::memory_order_relaxed); }
  size_t SlotCount() const { return mask_ + 1; }
  size_t MemoryBytes() const;
  const TableCounters& counters() const { return counters_; }

  // The version rule: does (v, origin) win over (sv, sorigin)?
  static bool Newer(uint32_t v, uint32_t origin, uint32_t sv, uint32_t sorigin) {
    return v != sv ? v > sv : origin > sorigin;
  }

 private:
  static constexpr size_t kKeyWords = (kMaxKeyOctets + 7) / 8;  // 11
  // One record: 16 words, 128 octets, cache-line aligned. Every field is an
  // atomic word so a reader racing with a recycle reads torn values only
  // through atomics (no data race) and discards them by the seq check.
  struct alignas(64) Record {
    std::atomic<uint64_t> seq;    // odd while being written; bumps on reuse
    std::atomic<uint64_t> hash;
    std::atomic<uint64_t> meta;   // key_len | endpoint_id << 32
    std::atomic<uint64_t> vo;     // version << 32 | origin_node
    std::atomic<uint64_t> times;  // created_s << 32 | expires_s
    std::atomic<uint64_t> key[kKeyWords];
  };
  static_assert(sizeof(Record) == 128, "record must stay two cache lines");

  // Index slot: (fingerprint << 32) | (record index + 1). 0 is empty.
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint32_t kTombIndex = 0xFFFFFFFFu;  // low half of a tombstone
  static bool IsTomb(uint64_t s) { return uint32_t(s) == kTombIndex; }
  static uint64_t MakeSlot(uint64_t hash, uint32_t rec) { return (hash & 0xFFFFFFFF00000000ull) | (rec + 1); }

  struct PaddedKey { uint64_t w[kKeyWords]; size_t words; size_t len; };
  static void Pad(const uint8_t* key, size_t len, PaddedKey* pk);
  // Reads record rec into out if it holds key pk with hash h. Returns
  // 1 match, 0 other key, -1 record changed while reading (retry).
  int ReadIfMatch(uint32_t rec, uint64_t h, const PaddedKey& pk, EntryFields* out) const;
  bool ReadRecord(uint32_t rec, EntryView* out) const;
  void WriteRecord(uint32_t rec, uint64_t h, const uint8_t* key, size_t len, const EntryFields& f);
  bool LookupOne(uint64_t h, const PaddedKey& pk, uint32_t now_s, EntryFields* out) const;
  // Writer helpers (writer_mu_ held).
  UpsertResult UpsertLocked(const uint8_t* key, size_t len, const EntryFields& f, uint32_t now_s);
  void RemoveAt(size_t slot);
  size_t ReclaimExpired(uint32_t now_s, size_t max_slots);

  const uint32_t capacity_;
  const uint64_t seed_;
  size_t mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
  std::unique_ptr<Record[]> records_;  // capacity_ + 1: one spare for replace
  std::unique_ptr<uint32_t[]> free_;   // free record stack, writer-owned
  uint32_t free_top_ = 0;
  std::atomic<uint32_t> live_{0};
  size_t sweep_cursor_ = 0;
  mutable TableCounters counters_;
  std::mutex writer_mu_;
};

template <typename Fn>
size_t AffinityTable::Iterate(size_t* cursor, size_t max, uint32_t now_s, Fn&& fn) const {
  size_t visited = 0;
  size_t i = *cursor;
  EntryView view;
  for (; i <= mask_ && visited < max; i++) {
    for (;;) {
      uint64_t s = slots_[i].load(std::memory_order_acquire);
      if (s == kEmpty || IsTomb(s)) break;
      if (!ReadRecord(uint32_t(s) - 1, &view)) continue;
      // The record was read consistently; it is the slot's if the slot still
      // names it (a recycled record would have been unlinked first).
      if (slots_[i].load(std::memory_order_acquire) != s) continue;
      if (view.fields.expires_s > now_s) {
        fn(view, i);
        visited++;
      }
      break;
    }
  }
  *cursor = i;
  return visited;
}

}  // namespace affinityd
