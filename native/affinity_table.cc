#include "affinity_table.h"

#include <cstring>

#include "key_hash.h"

namespace affinityd {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;

// An insert into a full table removes at most this many expired entries, so
// that one insert holds the writer mutex for a bounded time (about 0.3 ms);
// the next insert goes on from where this one stopped.
constexpr size_t kReclaimBatch = 1024;

size_t SlotsFor(uint32_t capacity) {
  size_t n = 16;
  while (n < size_t(capacity) * 2) n <<= 1;  // load factor <= 0.5
  return n;
}
}  // namespace

AffinityTable::AffinityTable(uint32_t capacity, uint64_t seed)
    : capacity_(capacity), seed_(seed), mask_(SlotsFor(capacity) - 1),
      slots_(mask_ + 1),
      records_(size_t(capacity) + 1),
      free_(new uint32_t[size_t(capacity) + 1]),
      expiry_(new uint32_t[size_t(capacity) + 1]) {
  for (size_t i = 0; i <= mask_; i++) slots_[i].store(kEmpty, kRelaxed);
  for (uint32_t r = 0; r <= capacity; r++) {
    records_[r].seq.store(0, kRelaxed);
    free_[r] = capacity - r;  // pop order 0, 1, 2, ...: fresh memory in order
    expiry_[r] = 0;
  }
  free_top_ = capacity + 1;
}

size_t AffinityTable::MemoryBytes() const {
  return (mask_ + 1) * sizeof(uint64_t) +
         (size_t(capacity_) + 1) * (sizeof(Record) + sizeof(free_[0]) + sizeof(expiry_[0]));
}

size_t AffinityTable::HomeSlot(const uint8_t* key, size_t len) const { return HomeOf(HashKey(key, len, seed_)); }

void AffinityTable::Pad(const uint8_t* key, size_t len, PaddedKey* pk) {
  pk->words = (len + 7) / 8;
  pk->len = len;
  for (size_t i = 0; i < kKeyWords; i++) pk->w[i] = 0;
  std::memcpy(pk->w, key, len);
}

// ---------------------------------------------------------------- readers

int AffinityTable::ReadIfMatch(const std::atomic<uint64_t>& slot, uint64_t s, uint64_t h, const PaddedKey& pk,
                               EntryFields* out) const {
  const Record& r = records_[RecordOf(s)];
  // Pairs with the release store of an even seq at the end of WriteRecord.
  uint64_t s1 = r.seq.load(kAcquire);
  if (s1 & 1) return -1;
  // Seqlock reader without fences (Boehm, "Can seqlocks get along with
  // programming language memory models?", 2012): the data loads are acquire,
  // so the loads after them (the slot, the seq) cannot move above them, and
  // a load that sees a recycling writer's (release) store also sees its odd
  // seq. Plain loads on x86; ThreadSanitizer models them, which it does not
  // do for fences.
  int match = 0;
  uint64_t meta = 0, vo = 0, times = 0;
  if (r.hash.load(kAcquire) == h) {
    meta = r.meta.load(kAcquire);
    match = (meta & 0xFF) == pk.len;
    for (size_t i = 0; match && i < pk.words; i++) match = r.key[i].load(kAcquire) == pk.w[i];
    if (match) {
      // Here the record may be rewritten for the same key (replaced twice,
      // the free stack being last-in first-out): the fields below would then
      // be another version's than the endpoint above; the seq check catches it.
      AFFINITYD_RACE_POINT();
      vo = r.vo.load(kAcquire);
      times = r.times.load(kAcquire);
    }
  }
  AFFINITYD_RACE_POINT();
  // What was read counts only if the slot names this record while the
  // record is unchanged, that is, between the two seq loads: then the record
  // was linked there with exactly these contents at that instant. Else the
  // record may have been freed since the slot was loaded and reused, for
  // another key (moving on would miss this key, still in the slot under a
  // new record) or for this key (a version not yet published; a later lookup
  // could then see an older one). Checked after the second seq load instead,
  // the slot could name the record again (freed, reused for another key,
  // then for this one) while what was read is another key's.
  if (slot.load(kAcquire) != s) return -1;
  AFFINITYD_RACE_POINT();
  if (r.seq.load(kRelaxed) != s1) return -1;
  if (match) {
    out->endpoint_id = uint32_t(meta >> 32);
    out->version = uint32_t(vo >> 32);
    out->origin_node = uint32_t(vo);
    out->created_s = uint32_t(times >> 32);
    out->expires_s = uint32_t(times);
  }
  return match;
}

bool AffinityTable::ReadRecord(const std::atomic<uint64_t>& slot, uint64_t s, EntryView* out,
                               uint64_t* seq) const {
  const Record& r = records_[RecordOf(s)];
  uint64_t s1 = r.seq.load(kAcquire);
  if (s1 & 1) return false;
  // Acquire data loads, and the slot re-checked between the seq loads: see
  // ReadIfMatch.
  uint64_t meta = r.meta.load(kAcquire);
  AFFINITYD_RACE_POINT();
  uint64_t vo = r.vo.load(kAcquire), times = r.times.load(kAcquire);
  uint64_t words[kKeyWords];
  for (size_t i = 0; i < kKeyWords; i++) words[i] = r.key[i].load(kAcquire);
  AFFINITYD_RACE_POINT();
  if (slot.load(kAcquire) != s) return false;
  AFFINITYD_RACE_POINT();
  if (r.seq.load(kRelaxed) != s1) return false;
  size_t len = meta & 0xFF;
  if (len > kMaxKeyOctets) return false;
  out->key_len = uint8_t(len);
  std::memcpy(out->key, words, len);
  out->fields.endpoint_id = uint32_t(meta >> 32);
  out->fields.version = uint32_t(vo >> 32);
  out->fields.origin_node = uint32_t(vo);
  out->fields.created_s = uint32_t(times >> 32);
  out->fields.expires_s = uint32_t(times);
  *seq = s1;
  return true;
}

bool AffinityTable::LookupOne(uint64_t h, const PaddedKey& pk, uint32_t now_s, EntryFields* out) const {
  const uint32_t fp = uint32_t(h >> 32);
  for (;;) {
    // Pairs with the release increment a writer makes before it overwrites
    // the old place of an entry it moved back (Unlink): if this probe missed
    // an entry because it moved from ahead of the probe to behind it, the
    // load after the probe sees the increment.
    const uint64_t moves = moves_.load(kAcquire);
    size_t i = HomeOf(h);
    for (size_t n = 0; n <= mask_; n++) {
      AFFINITYD_RACE_POINT();
      // Pairs with the release store that published the slot's record or
      // moved it here.
      uint64_t s = slots_[i].load(kAcquire);
      if (s == kEmpty) {
        // The end of the key's chain (a chain has no gap). A miss, unless an
        // entry moved while we probed: then probe again.
        if (moves_.load(kAcquire) == moves) return false;
        break;
      }
      if (uint32_t(s >> 32) != fp) {
        i = (i + 1) & mask_;
        continue;
      }
      AFFINITYD_RACE_POINT();
      int m = ReadIfMatch(slots_[i], s, h, pk, out);
      if (m < 0) {
        // The record changed, or the slot no longer names it: read the slot
        // again (each retry means a writer made progress).
        counters_.read_retries.fetch_add(1, kRelaxed);
        continue;
      }
      if (m == 1) return out->expires_s > now_s;
      i = (i + 1) & mask_;
    }
    counters_.read_retries.fetch_add(1, kRelaxed);
  }
}

bool AffinityTable::Lookup(const uint8_t* key, size_t len, uint32_t now_s, EntryView* out,
                           bool include_withdrawn) const {
  if (len < 2 || len > kMaxKeyOctets) return false;
  PaddedKey pk;
  Pad(key, len, &pk);
  if (!LookupOne(HashKey(key, len, seed_), pk, now_s, &out->fields)) return false;
  if (!include_withdrawn && out->fields.endpoint_id == kWithdrawnEndpoint) return false;
  out->key_len = uint8_t(len);
  std::memcpy(out->key, key, len);
  return true;
}

size_t AffinityTable::LookupBatch(const uint8_t* const* keys, const uint16_t* lens, size_t n, uint32_t now_s,
                                  int32_t* endpoints, uint32_t* versions, uint32_t* origins) const {
  // Three passes over groups of kGroup keys, DPDK-style: hash and prefetch
  // the home slots; prefetch the records those slots name; then compare.
  // Each pass overlaps its DRAM misses instead of paying them one by one.
  constexpr size_t kGroup = 16;
  uint64_t hashes[kGroup];
  size_t hits = 0;
  for (size_t base = 0; base < n; base += kGroup) {
    size_t g = n - base < kGroup ? n - base : kGroup;
    for (size_t j = 0; j < g; j++) {
      size_t len = lens[base + j];
      hashes[j] = (len >= 2 && len <= kMaxKeyOctets) ? HashKey(keys[base + j], len, seed_) : 0;
      __builtin_prefetch(&slots_[HomeOf(hashes[j])], 0, 1);
    }
    for (size_t j = 0; j < g; j++) {
      uint64_t s = slots_[HomeOf(hashes[j])].load(kRelaxed);  // a hint only
      if (s != kEmpty) {
        const Record* r = &records_[RecordOf(s)];
        __builtin_prefetch(r, 0, 1);
        __builtin_prefetch(reinterpret_cast<const char*>(r) + 64, 0, 1);
      }
    }
    for (size_t j = 0; j < g; j++) {
      size_t i = base + j, len = lens[i];
      EntryFields f;
      bool hit = false;
      if (len >= 2 && len <= kMaxKeyOctets) {
        PaddedKey pk;
        Pad(keys[i], len, &pk);
        hit = LookupOne(hashes[j], pk, now_s, &f) && f.endpoint_id != kWithdrawnEndpoint;
      }
      endpoints[i] = hit ? int32_t(f.endpoint_id) : -1;
      if (versions) versions[i] = hit ? f.version : 0;
      if (origins) origins[i] = hit ? f.origin_node : 0;
      hits += hit;
    }
  }
  return hits;
}

bool AffinityTable::HomeEntries::Seen(uint32_t rec, uint64_t seq) const {
  for (size_t i = 0; i < seen_n_ && i < kInline; i++)
    if (seen_[i].first == rec && seen_[i].second == seq) return true;
  for (const auto& p : seen_more_)
    if (p.first == rec && p.second == seq) return true;
  return false;
}

void AffinityTable::HomeEntries::MarkSeen(uint32_t rec, uint64_t seq) {
  if (seen_n_ < kInline) seen_[seen_n_] = {rec, seq};
  else seen_more_.emplace_back(rec, seq);
  seen_n_++;
}

void AffinityTable::CollectHome(size_t home, uint32_t now_s, HomeEntries* out) const {
  for (;;) {
    out->Reset();
    // The entries of this home lie in the chain from it to the next empty
    // slot, and a chain has no gap: an empty home slot means none.
    if (slots_[home].load(kAcquire) == kEmpty) return;
    // As in LookupOne: if an entry of this home moved from ahead of the walk
    // to behind it, the load after the walk sees the increment.
    const uint64_t moves = moves_.load(kAcquire);
    bool consistent = false;  // until the chain's end is reached
    for (size_t i = home, n = 0; n <= mask_; i = (i + 1) & mask_, n++) {
      AFFINITYD_RACE_POINT();
      uint64_t s = slots_[i].load(kAcquire);
      if (s == kEmpty) {
        consistent = true;
        break;
      }
      if (HomeOf(s) != home) continue;
      EntryView* v = out->Next();
      uint64_t seq;
      if (!ReadRecord(slots_[i], s, v, &seq)) break;  // recycled, replaced or moved: read the home again
      // A move copies an entry back before its old place is overwritten, so
      // the walk may meet it twice: the same record with the same sequence
      // number (a record reused for another entry has another).
      if (out->Seen(RecordOf(s), seq)) {
        out->DropLast();
        continue;
      }
      out->MarkSeen(RecordOf(s), seq);
      if (v->fields.expires_s <= now_s) out->DropLast();
    }
    if (consistent && moves_.load(kAcquire) == moves) return;
    counters_.read_retries.fetch_add(1, kRelaxed);
  }
}

// ---------------------------------------------------------------- writers

void AffinityTable::WriteRecord(uint32_t rec, uint64_t h, const uint8_t* key, size_t len,
                                const EntryFields& f) {
  Record& r = records_[rec];
  PaddedKey pk;
  Pad(key, len, &pk);
  uint64_t s = r.seq.load(kRelaxed);
  // Seqlock writer: odd seq; data stores with release, so a reader whose
  // acquire load sees any of them also sees the odd seq and retries; then
  // the even seq with release. Only this writer (writer_mu_) writes records.
  r.seq.store(s + 1, kRelaxed);
  r.hash.store(h, kRelease);
  r.meta.store(uint64_t(f.endpoint_id) << 32 | len, kRelease);
  r.vo.store(uint64_t(f.version) << 32 | f.origin_node, kRelease);
  r.times.store(uint64_t(f.created_s) << 32 | f.expires_s, kRelease);
  for (size_t i = 0; i < kKeyWords; i++) r.key[i].store(pk.w[i], kRelease);
  r.seq.store(s + 2, kRelease);
}

void AffinityTable::Find(uint64_t h, const PaddedKey& pk, Place* at) const {
  const uint32_t fp = uint32_t(h >> 32);
  // Ends: at most half the slots hold an entry.
  for (size_t i = HomeOf(h);; i = (i + 1) & mask_) {
    uint64_t s = slots_[i].load(kRelaxed);  // only writers store slots, and we are the writer
    if (s == kEmpty) {
      at->slot = i;
      at->found = false;
      return;
    }
    if (uint32_t(s >> 32) != fp) continue;
    if (ReadIfMatch(slots_[i], s, h, pk, &at->fields) == 1) {  // no concurrent writer: 0 or 1 only
      at->slot = i;
      at->found = true;
      at->rec = RecordOf(s);
      return;
    }
  }
}

void AffinityTable::NoteExpiry(uint32_t rec, uint32_t expires_s) {
  uint32_t x = expires_s ? expires_s : 1;
  expiry_[rec] = x;
  if (x < next_expiry_) next_expiry_ = x;
  if (x < pass_min_) pass_min_ = x;
}

UpsertResult AffinityTable::Store(Place* at, uint64_t h, const uint8_t* key, const PaddedKey& pk,
                                  const EntryFields& f, uint32_t now_s) {
  if (at->found) {
    // Replace by publishing a fresh record: readers see the old entry or the
    // new one, never a mix. The old record goes back to the free stack (the
    // spare record makes one free even when full); a reader still holding
    // its index detects the reuse by its seq or by the slot.
    uint32_t fresh = PopFree();
    WriteRecord(fresh, h, key, pk.len, f);
    AFFINITYD_RACE_POINT();
    slots_[at->slot].store(MakeSlot(h, fresh), kRelease);
    PushFree(at->rec);
    NoteExpiry(fresh, f.expires_s);
    counters_.replaced.fetch_add(1, kRelaxed);
    return UpsertResult::kReplaced;
  }
  if (live_.load(kRelaxed) >= capacity_) {
    if (now_s >= next_expiry_) ReclaimExpired(now_s, size_t(capacity_) + 1, kReclaimBatch);
    if (live_.load(kRelaxed) >= capacity_) {
      counters_.full.fetch_add(1, kRelaxed);
      return UpsertResult::kFull;
    }
    Find(h, pk, at);  // removals moved entries: the chain may end elsewhere now
  }
  uint32_t fresh = PopFree();
  WriteRecord(fresh, h, key, pk.len, f);
  AFFINITYD_RACE_POINT();
  // Pairs with the acquire loads of readers: the record is complete before
  // the slot names it. The slot was the empty one ending the key's chain, so
  // no other chain changes.
  slots_[at->slot].store(MakeSlot(h, fresh), kRelease);
  NoteExpiry(fresh, f.expires_s);
  live_.fetch_add(1, kRelaxed);
  counters_.inserted.fetch_add(1, kRelaxed);
  return UpsertResult::kInserted;
}

UpsertResult AffinityTable::Upsert(const uint8_t* key, size_t len, const EntryFields& f, uint32_t now_s) {
  if (len < 2 || len > kMaxKeyOctets) return UpsertResult::kBadKey;
  const uint64_t h = HashKey(key, len, seed_);
  PaddedKey pk;
  Pad(key, len, &pk);
  std::lock_guard<std::mutex> lock(writer_mu_);
  Place at;
  Find(h, pk, &at);
  if (at.found && at.fields.expires_s > now_s &&
      !Newer(f.version, f.origin_node, at.fields.version, at.fields.origin_node)) {
    counters_.ignored.fetch_add(1, kRelaxed);
    return UpsertResult::kIgnored;
  }
  return Store(&at, h, key, pk, f, now_s);
}

UpsertResult AffinityTable::Claim(const uint8_t* key, size_t len, EntryFields f, uint32_t now_s,
                                  EntryFields* winner) {
  if (len < 2 || len > kMaxKeyOctets) return UpsertResult::kBadKey;
  const uint64_t h = HashKey(key, len, seed_);
  PaddedKey pk;
  Pad(key, len, &pk);
  // Under the writer mutex: no other write can come between the look and the
  // store, so of two proposals of one version the first stored wins, on
  // whichever thread each arrives (the I/O thread's CLAIMs, JS's own).
  std::lock_guard<std::mutex> lock(writer_mu_);
  Place at;
  Find(h, pk, &at);
  if (at.found && at.fields.expires_s > now_s) {
    if (at.fields.endpoint_id != kWithdrawnEndpoint && at.fields.version >= f.version) {
      *winner = at.fields;
      counters_.ignored.fetch_add(1, kRelaxed);
      return UpsertResult::kIgnored;
    }
    // above a withdraw marker (or an older entry being moved)
    if (at.fields.version >= f.version) f.version = at.fields.version + 1;
  }
  UpsertResult r = Store(&at, h, key, pk, f, now_s);
  *winner = f;
  return r;
}

void AffinityTable::Unlink(size_t i) {
  const uint32_t rec = RecordOf(slots_[i].load(kRelaxed));
  // Backward-shift deletion (Knuth, TAOCP vol. 3, 6.4, Algorithm R): walk the
  // rest of the cluster and move back into the hole each entry whose chain
  // covers it, so no chain ever needs a tombstone and probes stay as short
  // as in a fresh table. Order of stores, for readers:
  // - an entry is first copied into the hole (release): for a while it is in
  //   two slots, and a reader finds it in either;
  // - before its old slot is overwritten (by the next entry moved, or by the
  //   final empty), moves_ is bumped (release, ordered before that store):
  //   a reader that missed the entry because it passed the hole before the
  //   copy and the old slot after it, sees the bump when it re-reads moves_;
  // - no slot is ever empty inside a chain: the only empty store is the last
  //   hole, which by Algorithm R no remaining chain crosses.
  size_t hole = i;
  bool moved = false;
  for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    uint64_t s = slots_[j].load(kRelaxed);
    if (s == kEmpty) break;
    // The entry at j may fill the hole unless its home lies cyclically in
    // (hole, j]: then the hole is before its chain starts.
    if (((j - HomeOf(s)) & mask_) < ((j - hole) & mask_)) continue;
    if (moved) moves_.fetch_add(1, kRelease);
    slots_[hole].store(s, kRelease);
    AFFINITYD_RACE_POINT();
    moved = true;
    hole = j;
  }
  if (moved) moves_.fetch_add(1, kRelease);
  slots_[hole].store(kEmpty, kRelease);
  PushFree(rec);
  live_.fetch_sub(1, kRelaxed);
}

void AffinityTable::UnlinkRecord(uint32_t rec) {
  const uint64_t want = MakeSlot(records_[rec].hash.load(kRelaxed), rec);
  for (size_t i = HomeOf(want), n = 0; n <= mask_; i = (i + 1) & mask_, n++) {
    uint64_t s = slots_[i].load(kRelaxed);
    if (s == want) return Unlink(i);
    if (s == kEmpty) break;
  }
  // Unreachable: expiry_ says the record is linked, and it is in its chain.
}

bool AffinityTable::Remove(const uint8_t* key, size_t len) {
  if (len < 2 || len > kMaxKeyOctets) return false;
  const uint64_t h = HashKey(key, len, seed_);
  PaddedKey pk;
  Pad(key, len, &pk);
  std::lock_guard<std::mutex> lock(writer_mu_);
  Place at;
  Find(h, pk, &at);
  if (!at.found) return false;
  Unlink(at.slot);
  counters_.removed.fetch_add(1, kRelaxed);
  return true;
}

size_t AffinityTable::Clear() {
  std::lock_guard<std::mutex> lock(writer_mu_);
  // Empty each cluster from its end backwards: the slot emptied is then
  // always the last of its cluster, so no remaining entry's chain gets a gap
  // (a lookup running meanwhile finds each entry until it is removed).
  size_t end = 0;
  while (slots_[end].load(kRelaxed) != kEmpty) end++;  // exists: at most half full
  size_t removed = 0;
  for (size_t i = (end - 1) & mask_; i != end; i = (i - 1) & mask_) {
    uint64_t s = slots_[i].load(kRelaxed);
    if (s == kEmpty) continue;
    slots_[i].store(kEmpty, kRelease);
    PushFree(RecordOf(s));
    removed++;
  }
  live_.store(0, kRelaxed);
  counters_.removed.fetch_add(removed, kRelaxed);
  return removed;
}

size_t AffinityTable::ReclaimExpired(uint32_t now_s, size_t max_examined, size_t max_removed) {
  // One pass at a time over the records' expiry times, from where the last
  // call stopped. A complete pass leaves in next_expiry_ the least expiry of
  // the entries it kept and of those written meanwhile (NoteExpiry), so until
  // that second comes nothing can have expired and both the sweep and a full
  // table's inserts skip the walk.
  size_t removed = 0;
  for (size_t n = 0; n < max_examined && removed < max_removed; n++) {
    uint32_t r = reclaim_cursor_;
    reclaim_cursor_ = r == capacity_ ? 0 : r + 1;
    uint32_t x = expiry_[r];
    if (x != 0) {
      if (x <= now_s) {
        UnlinkRecord(r);
        removed++;
      } else if (x < pass_min_) {
        pass_min_ = x;
      }
    }
    if (++pass_examined_ > capacity_) {
      next_expiry_ = pass_min_;
      pass_min_ = UINT32_MAX;
      pass_examined_ = 0;
    }
  }
  counters_.expired.fetch_add(removed, kRelaxed);
  return removed;
}

size_t AffinityTable::Sweep(uint32_t now_s, size_t max_entries) {
  std::lock_guard<std::mutex> lock(writer_mu_);
  if (now_s < next_expiry_) return 0;
  // Full: look at every record now (an array of 4-octet times, about 1 ms
  // per million entries), so expired entries make room within one sweep
  // interval rather than after many; still remove at most max_entries.
  size_t examine = live_.load(kRelaxed) >= capacity_ ? size_t(capacity_) + 1 : max_entries;
  return ReclaimExpired(now_s, examine, max_entries);
}

}  // namespace affinityd
