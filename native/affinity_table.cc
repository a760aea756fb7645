#include "affinity_table.h"

#include <cstring>

#include "key_hash.h"

namespace affinityd {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;

size_t SlotsFor(uint32_t capacity) {
  size_t n = 16;
  while (n < size_t(capacity) * 2) n <<= 1;  // load factor <= 0.5
  return n;
}
}  // namespace

AffinityTable::AffinityTable(uint32_t capacity, uint64_t seed)
    : capacity_(capacity), seed_(seed), mask_(SlotsFor(capacity) - 1),
      slots_(new std::atomic<uint64_t>[mask_ + 1]),
      records_(new Record[size_t(capacity) + 1]),
      free_(new uint32_t[size_t(capacity) + 1]) {
  for (size_t i = 0; i <= mask_; i++) slots_[i].store(kEmpty, kRelaxed);
  for (uint32_t r = 0; r <= capacity; r++) {
    records_[r].seq.store(0, kRelaxed);
    free_[r] = capacity - r;  // pop order 0, 1, 2, ...: fresh memory in order
  }
  free_top_ = capacity + 1;
}

size_t AffinityTable::MemoryBytes() const {
  return (mask_ + 1) * sizeof(uint64_t) + (size_t(capacity_) + 1) * (sizeof(Record) + sizeof(uint32_t));
}

void AffinityTable::Pad(const uint8_t* key, size_t len, PaddedKey* pk) {
  pk->words = (len + 7) / 8;
  pk->len = len;
  for (size_t i = 0; i < kKeyWords; i++) pk->w[i] = 0;
  std::memcpy(pk->w, key, len);
}

int AffinityTable::ReadIfMatch(uint32_t rec, uint64_t h, const PaddedKey& pk, EntryFields* out) const {
  const Record& r = records_[rec];
  // Pairs with the release store of an even seq at the end of WriteRecord.
  uint64_t s1 = r.seq.load(kAcquire);
  if (s1 & 1) return -1;
  // Seqlock reader without fences (Boehm, "Can seqlocks get along with
  // programming language memory models?", 2012): the data loads are acquire,
  // so the seq re-check below cannot move above them, and a load that sees
  // a recycling writer's (release) store also sees its odd seq. Plain loads
  // on x86; and ThreadSanitizer models them, which it does not do for fences.
  if (r.hash.load(kAcquire) != h) goto check_other;
  {
    uint64_t meta = r.meta.load(kAcquire);
    if ((meta & 0xFF) != pk.len) goto check_other;
    for (size_t i = 0; i < pk.words; i++)
      if (r.key[i].load(kAcquire) != pk.w[i]) goto check_other;
    uint64_t vo = r.vo.load(kAcquire), times = r.times.load(kAcquire);
    if (r.seq.load(kRelaxed) != s1) return -1;
    out->endpoint_id = uint32_t(meta >> 32);
    out->version = uint32_t(vo >> 32);
    out->origin_node = uint32_t(vo);
    out->created_s = uint32_t(times >> 32);
    out->expires_s = uint32_t(times);
    return 1;
  }
check_other:
  return r.seq.load(kRelaxed) == s1 ? 0 : -1;
}

bool AffinityTable::ReadRecord(uint32_t rec, EntryView* out) const {
  const Record& r = records_[rec];
  uint64_t s1 = r.seq.load(kAcquire);
  if (s1 & 1) return false;
  // Acquire data loads: see ReadIfMatch.
  uint64_t meta = r.meta.load(kAcquire), vo = r.vo.load(kAcquire), times = r.times.load(kAcquire);
  uint64_t words[kKeyWords];
  for (size_t i = 0; i < kKeyWords; i++) words[i] = r.key[i].load(kAcquire);
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
  return true;
}

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

bool AffinityTable::LookupOne(uint64_t h, const PaddedKey& pk, uint32_t now_s, EntryFields* out) const {
  const uint32_t fp = uint32_t(h >> 32);
restart:
  for (size_t i = h & mask_, n = 0; n <= mask_; i = (i + 1) & mask_, n++) {
    // Pairs with the release store that published the slot's record.
    uint64_t s = slots_[i].load(kAcquire);
    if (s == kEmpty) return false;
    if (IsTomb(s) || uint32_t(s >> 32) != fp) continue;
    int m = ReadIfMatch(uint32_t(s) - 1, h, pk, out);
    if (m == 0) continue;
    // A changed record or a changed slot means the record we read may have
    // been recycled for another key: start again (lock-free: some writer made
    // progress).
    if (m < 0 || slots_[i].load(kAcquire) != s) {
      counters_.read_retries.fetch_add(1, kRelaxed);
      goto restart;
    }
    return out->expires_s > now_s;
  }
  return false;
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
      __builtin_prefetch(&slots_[hashes[j] & mask_], 0, 1);
    }
    for (size_t j = 0; j < g; j++) {
      uint64_t s = slots_[hashes[j] & mask_].load(kRelaxed);
      if (s != kEmpty && !IsTomb(s)) {
        const Record* r = &records_[uint32_t(s) - 1];
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

UpsertResult AffinityTable::Upsert(const uint8_t* key, size_t len, const EntryFields& f, uint32_t now_s) {
  if (len < 2 || len > kMaxKeyOctets) return UpsertResult::kBadKey;
  std::lock_guard<std::mutex> lock(writer_mu_);
  return UpsertLocked(key, len, f, now_s);
}

UpsertResult AffinityTable::Claim(const uint8_t* key, size_t len, EntryFields f, uint32_t now_s, EntryFields* winner) {
  if (len < 2 || len > kMaxKeyOctets) return UpsertResult::kBadKey;
  // Under the writer mutex: no other write can come between the look and the
  // store, so of two proposals of one version the first stored wins, on
  // whichever thread each arrives (the I/O thread's CLAIMs, JS's own).
  std::lock_guard<std::mutex> lock(writer_mu_);
  EntryView held;
  if (Lookup(key, len, now_s, &held, true)) {
    if (held.fields.endpoint_id != kWithdrawnEndpoint && held.fields.version >= f.version) {
      *winner = held.fields;
      counters_.ignored.fetch_add(1, kRelaxed);
      return UpsertResult::kIgnored;
    }
    // above a withdraw marker (or an older entry being moved)
    if (held.fields.version >= f.version) f.version = held.fields.version + 1;
  }
  UpsertResult r = UpsertLocked(key, len, f, now_s);
  *winner = f;
  return r;
}

UpsertResult AffinityTable::UpsertLocked(const uint8_t* key, size_t len, const EntryFields& f, uint32_t now_s) {
  const uint64_t h = HashKey(key, len, seed_);
  const uint32_t fp = uint32_t(h >> 32);
  PaddedKey pk;
  Pad(key, len, &pk);
  size_t first_free = SIZE_MAX, i = h & mask_;
  for (size_t n = 0; n <= mask_; i = (i + 1) & mask_, n++) {
    uint64_t s = slots_[i].load(kRelaxed);  // only writers store slots, and we are the writer
    if (s == kEmpty) {
      if (first_free == SIZE_MAX) first_free = i;
      break;
    }
    if (IsTomb(s)) {
      if (first_free == SIZE_MAX) first_free = i;
      continue;
    }
    if (uint32_t(s >> 32) != fp) continue;
    EntryFields old;
    uint32_t rec = uint32_t(s) - 1;
    if (ReadIfMatch(rec, h, pk, &old) != 1) continue;  // no concurrent writer: 0 or 1 only
    bool expired = old.expires_s <= now_s;
    if (!expired && !Newer(f.version, f.origin_node, old.version, old.origin_node)) {
      counters_.ignored.fetch_add(1, kRelaxed);
      return UpsertResult::kIgnored;
    }
    // Replace by publishing a fresh record: readers see the old entry or the
    // new one, never a mix. The old record goes back to the free stack; a
    // reader still holding its index detects the reuse by its seq.
    uint32_t fresh = free_[--free_top_];
    WriteRecord(fresh, h, key, len, f);
    slots_[i].store(MakeSlot(h, fresh), kRelease);
    free_[free_top_++] = rec;
    counters_.replaced.fetch_add(1, kRelaxed);
    return UpsertResult::kReplaced;
  }
  if (live_.load(kRelaxed) >= capacity_ && ReclaimExpired(now_s, 256) == 0) {
    counters_.full.fetch_add(1, kRelaxed);
    return UpsertResult::kFull;
  }
  if (first_free == SIZE_MAX) {  // cannot happen at load <= 0.5; be safe
    counters_.full.fetch_add(1, kRelaxed);
    return UpsertResult::kFull;
  }
  uint32_t fresh = free_[--free_top_];
  WriteRecord(fresh, h, key, len, f);
  // Pairs with the acquire loads of readers: the record is complete before
  // the slot names it.
  slots_[first_free].store(MakeSlot(h, fresh), kRelease);
  live_.fetch_add(1, kRelaxed);
  counters_.inserted.fetch_add(1, kRelaxed);
  return UpsertResult::kInserted;
}

void AffinityTable::RemoveAt(size_t i) {
  uint64_t s = slots_[i].load(kRelaxed);
  uint32_t rec = uint32_t(s) - 1;
  slots_[i].store(kTombIndex, kRelease);
  free_[free_top_++] = rec;
  live_.fetch_sub(1, kRelaxed);
  // Tombstones followed by an empty slot end no probe chain: turn them back
  // into empty slots, from i backwards. Safe with concurrent readers because
  // no live key lies beyond an empty slot in its chain, and only this writer
  // changes slots.
  if (slots_[(i + 1) & mask_].load(kRelaxed) != kEmpty) return;
  for (size_t j = i;; j = (j - 1) & mask_) {
    if (!IsTomb(slots_[j].load(kRelaxed))) break;
    slots_[j].store(kEmpty, kRelease);
  }
}

bool AffinityTable::Remove(const uint8_t* key, size_t len) {
  if (len < 2 || len > kMaxKeyOctets) return false;
  const uint64_t h = HashKey(key, len, seed_);
  PaddedKey pk;
  Pad(key, len, &pk);
  std::lock_guard<std::mutex> lock(writer_mu_);
  for (size_t i = h & mask_, n = 0; n <= mask_; i = (i + 1) & mask_, n++) {
    uint64_t s = slots_[i].load(kRelaxed);
    if (s == kEmpty) return false;
    if (IsTomb(s) || uint32_t(s >> 32) != uint32_t(h >> 32)) continue;
    EntryFields old;
    if (ReadIfMatch(uint32_t(s) - 1, h, pk, &old) != 1) continue;
    RemoveAt(i);
    counters_.removed.fetch_add(1, kRelaxed);
    return true;
  }
  return false;
}

size_t AffinityTable::Clear() {
  std::lock_guard<std::mutex> lock(writer_mu_);
  size_t removed = 0;
  for (size_t i = 0; i <= mask_; i++) {
    uint64_t s = slots_[i].load(kRelaxed);
    if (s != kEmpty && !IsTomb(s)) {
      free_[free_top_++] = uint32_t(s) - 1;
      removed++;
    }
    slots_[i].store(kEmpty, kRelease);
  }
  live_.store(0, kRelaxed);
  counters_.removed.fetch_add(removed, kRelaxed);
  return removed;
}

size_t AffinityTable::ReclaimExpired(uint32_t now_s, size_t max_slots) {
  size_t removed = 0;
  for (size_t n = 0; n < max_slots && n <= mask_; n++) {
    size_t i = sweep_cursor_;
    sweep_cursor_ = (sweep_cursor_ + 1) & mask_;
    uint64_t s = slots_[i].load(kRelaxed);
    if (s == kEmpty || IsTomb(s)) continue;
    uint64_t times = records_[uint32_t(s) - 1].times.load(kRelaxed);
    if (uint32_t(times) <= now_s) {
      RemoveAt(i);
      removed++;
    }
  }
  counters_.expired.fetch_add(removed, kRelaxed);
  return removed;
}

size_t AffinityTable::Sweep(uint32_t now_s, size_t max_slots) {
  std::lock_guard<std::mutex> lock(writer_mu_);
  return ReclaimExpired(now_s, max_slots);
}

}  // namespace affinityd
