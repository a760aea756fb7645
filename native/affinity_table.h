// The affinity table: client key -> (endpoint id, version, origin node,
// created, expires). Fixed capacity chosen at start; no allocation after.
//
// Layout: one 128-octet record per entry (plus one spare), and an index of
// 8-octet slots, open addressing with linear probing, at most half full. A
// slot holds the high half of the key's hash and the record's index; the low
// bits of that half are the key's home slot, the rest a fingerprint that
// spares a probe most record reads.
//
// Concurrency (see docs/design.md, "The affinity table"):
// - Readers (Lookup, LookupBatch, Iterate) run on any thread and never block
//   and never wait for a writer. Three things can change under a reader, and
//   each is detected where it is read:
//   1. a record is recycled while being read: its sequence counter changes;
//   2. a slot stops naming the record the reader followed (the record was
//      replaced, freed, and at once reused for another key, the free stack
//      being last-in first-out): the slot is read again after the record;
//   3. entries move back along their probe chain when a key before them is
//      deleted (deletion leaves no tombstones): every move bumps moves_, and a
//      reader that found nothing reads moves_ again and retries if it moved.
//   Each retry means some writer made progress, so reads are lock-free.
// - Writers (Upsert, Remove, Clear, Sweep) take writer_mu_. There are two
//   writer threads in a node (the JS thread and the responder's I/O thread),
//   writes are far rarer than reads, and one writer at a time keeps moves and
//   recycling simple without double-width CAS (which is not lock-free on this
//   target: GCC 12 on x86-64 needs -mcx16 -latomic for it and is_lock_free()
//   still reports false; docs/design.md).
//
// When full: an insert of a new key first reclaims expired entries (a pass
// over the records' expiry times, skipped while no entry can have expired);
// if none, the insert is refused and counted (kFull). Live entries are never
// evicted to make room: evicting a live client would split its bundle, while
// a refused insert only means this directory cannot answer for that client
// (the node that made the entry still can).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "client_key.h"
#include "huge_array.h"

// Race points: the stress program (native/tools/table_stress.cc) compiles the
// table with AFFINITYD_TABLE_RACE_POINTS defined, and then each point may
// pause its thread for a random while, so that the races this table handles
// (a record recycled, a slot changed, an entry moved while a reader is
// between two loads) happen thousands of times in a short run. In the addon
// they are empty.
#ifdef AFFINITYD_TABLE_RACE_POINTS
namespace affinityd {
void TableRacePoint();  // defined by the stress program
}
#define AFFINITYD_RACE_POINT() ::affinityd::TableRacePoint()
#else
#define AFFINITYD_RACE_POINT() ((void)0)
#endif

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
  // Visits live entries and withdraw markers by home slot, from home slot
  // *cursor on; fn(view, home). A walk from 0 to SlotCount() visits every
  // entry that is in the table for the whole walk exactly once, whatever the
  // writers do meanwhile (entries move only within their home's chain, and
  // all entries of one home are read and checked together). It stops before
  // a home whose entries would take it past max (but visits at least one
  // home's entries), and advances *cursor past the homes visited; *cursor is
  // SlotCount() when the walk is done. Starting at an entry's home visits
  // that entry again, and any entries of the same home listed before it.
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
  // Removes up to max_entries expired entries, examining at most
  // max_entries records (every record when the table is full); examines
  // nothing while no entry can have expired yet. Returns the entries removed.
  size_t Sweep(uint32_t now_s, size_t max_entries);

  // The slot a key's probe starts at (tests and tools place keys with it).
  size_t HomeSlot(const uint8_t* key, size_t len) const;

  uint32_t Capacity() const { return capacity_; }
  uint32_t Size() const { return live_.load(std::memory_order_relaxed); }
  size_t SlotCount() const { return mask_ + 1; }
  size_t MemoryBytes() const;
  // Of MemoryBytes, how much lies in mappings advised for huge pages (huge_array.h).
  size_t HugePageAdvisedBytes() const { return slots_.advised_bytes() + records_.advised_bytes(); }
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

  // Index slot: (hash >> 32) << 32 | (record index + 1). 0 is empty.
  static constexpr uint64_t kEmpty = 0;
  static uint64_t MakeSlot(uint64_t hash, uint32_t rec) { return (hash & 0xFFFFFFFF00000000ull) | (rec + 1); }
  static uint32_t RecordOf(uint64_t slot) { return uint32_t(slot) - 1; }
  // A key's home slot, from its hash or from a slot naming it (both carry
  // the hash's high half).
  size_t HomeOf(uint64_t hash_or_slot) const { return size_t(hash_or_slot >> 32) & mask_; }

  struct PaddedKey { uint64_t w[kKeyWords]; size_t words; size_t len; };
  static void Pad(const uint8_t* key, size_t len, PaddedKey* pk);
  // Reads the record that slot (loaded as s) names, into out if it holds
  // key pk with hash h. Returns 1 match, 0 other key, -1 the record changed
  // or the slot no longer names it (read the slot again). 1 and 0 are true
  // of the slot at one instant.
  int ReadIfMatch(const std::atomic<uint64_t>& slot, uint64_t s, uint64_t h, const PaddedKey& pk,
                  EntryFields* out) const;
  // Reads the record that slot (loaded as s) names, whole; false as -1
  // above. *seq: the record's sequence number (the same number means the
  // same contents).
  bool ReadRecord(const std::atomic<uint64_t>& slot, uint64_t s, EntryView* out, uint64_t* seq) const;
  void WriteRecord(uint32_t rec, uint64_t h, const uint8_t* key, size_t len, const EntryFields& f);
  bool LookupOne(uint64_t h, const PaddedKey& pk, uint32_t now_s, EntryFields* out) const;

  // The unexpired entries of one home slot, read consistently (Iterate).
  class HomeEntries {
   public:
    size_t size() const { return n_; }
    const EntryView& operator[](size_t i) const { return i < kInline ? views_[i] : more_[i - kInline]; }

   private:
    friend class AffinityTable;
    static constexpr size_t kInline = 16;  // more than 16 keys of one home: about never at load <= 1/2
    void Reset() { n_ = 0; seen_n_ = 0; more_.clear(); seen_more_.clear(); }
    bool Seen(uint32_t rec, uint64_t seq) const;
    void MarkSeen(uint32_t rec, uint64_t seq);
    EntryView* Next() {
      if (n_ < kInline) return &views_[n_++];
      n_++;
      more_.emplace_back();
      return &more_.back();
    }
    void DropLast() {
      if (n_-- > kInline) more_.pop_back();
    }
    EntryView views_[kInline];
    std::vector<EntryView> more_;
    size_t n_ = 0;
    std::pair<uint32_t, uint64_t> seen_[kInline];
    std::vector<std::pair<uint32_t, uint64_t>> seen_more_;
    size_t seen_n_ = 0;
  };
  void CollectHome(size_t home, uint32_t now_s, HomeEntries* out) const;

  // ---- writer building blocks (writer_mu_ held) ----
  // An operation on one key is Find, a decision on what it found, then Store
  // or Unlink, all under one lock: Upsert is the version rule between Find
  // and Store, Claim the first-writer rule; another rule (a default lifetime)
  // is another decision between the same two calls.
  struct Place {
    size_t slot = 0;     // the key's slot, or the empty slot ending its chain
    bool found = false;
    uint32_t rec = 0;    // found: the key's record
    EntryFields fields;  // found: its fields (expired or not)
  };
  void Find(uint64_t h, const PaddedKey& pk, Place* at) const;
  // Inserts (at.found false) or replaces (at.found) the key's entry. Reclaims
  // expired entries when full; kFull if that finds none.
  UpsertResult Store(Place* at, uint64_t h, const uint8_t* key, const PaddedKey& pk, const EntryFields& f,
                     uint32_t now_s);
  // Removes the entry in slot i: backward-shift deletion, no tombstone.
  void Unlink(size_t i);
  void UnlinkRecord(uint32_t rec);
  uint32_t PopFree() { return free_[--free_top_]; }
  void PushFree(uint32_t rec) {
    expiry_[rec] = 0;
    free_[free_top_++] = rec;
  }
  void NoteExpiry(uint32_t rec, uint32_t expires_s);
  size_t ReclaimExpired(uint32_t now_s, size_t max_examined, size_t max_removed);

  // Read by every reader, written only at construction.
  const uint32_t capacity_;
  const uint64_t seed_;
  size_t mask_;
  HugeArray<std::atomic<uint64_t>> slots_;
  HugeArray<Record> records_;  // capacity_ + 1: one spare for replace
  // Bumped (release) before a writer overwrites the old place of an entry it
  // moved; read (acquire) by readers before and after a probe that found
  // nothing. Alone on its cache line: readers load it on every lookup.
  alignas(64) std::atomic<uint64_t> moves_{0};
  // Writer-owned (writer_mu_), except live_ (read by Size()).
  alignas(64) std::atomic<uint32_t> live_{0};
  std::unique_ptr<uint32_t[]> free_;    // free record stack, last in first out
  uint32_t free_top_ = 0;
  // Per record: max(expires_s, 1) while the record holds an entry, 0 when
  // free. Reclaiming walks this array, not the records.
  std::unique_ptr<uint32_t[]> expiry_;
  uint32_t reclaim_cursor_ = 0;         // next record the reclaim pass examines
  size_t pass_examined_ = 0;            // records examined in the current pass
  uint32_t pass_min_ = UINT32_MAX;      // least expiry seen (or written) in the current pass
  uint32_t next_expiry_ = 0;            // no entry expires before this second
  mutable TableCounters counters_;
  std::mutex writer_mu_;
};

template <typename Fn>
size_t AffinityTable::Iterate(size_t* cursor, size_t max, uint32_t now_s, Fn&& fn) const {
  size_t visited = 0;
  size_t home = *cursor;
  HomeEntries found;
  for (; home <= mask_ && visited < max; home++) {
    // An empty home slot: no entry has this home (CollectHome says why).
    if (slots_[home].load(std::memory_order_acquire) == kEmpty) continue;
    CollectHome(home, now_s, &found);
    if (found.size() == 0) continue;
    if (visited > 0 && visited + found.size() > max) break;
    for (size_t i = 0; i < found.size(); i++) fn(found[i], home);
    visited += found.size();
  }
  *cursor = home;
  return visited;
}

}  // namespace affinityd
