// Stress test of the affinity table and the inbound queue.
//
// CMake builds it twice: table_stress under ThreadSanitizer, and
// table_stress_fast optimized without a sanitizer (ten times the operations
// per second). `npm test` runs both (test/native/tsan-stress.test.ts,
// test/native/table-stress.test.ts); native/tools/mutation-test.sh builds
// table_stress_fast against broken copies of the table and checks that it
// fails on every one, every run.
//
// Both builds compile the table with race points (affinity_table.h):
// TableRacePoint below pauses its thread at random, for a spin or a yield,
// between the loads and stores whose races the table handles, so that in a
// few seconds on two cores each race happens thousands of times.
//
// Two writers (as in a node: the JS thread and the I/O thread) and two
// readers on a 1024-entry table:
// - 16 pinned keys are inserted first and never removed and never expire;
//   the writers replace them all the time (key 0 most), so their records are
//   recycled at once, for them and for each other.
// - 1,500 churn keys are inserted, replaced, removed, born expired and swept;
//   the table is full most of the time, so entries move back on every
//   removal and expired entries are reclaimed by inserts.
// The writers alternate every few milliseconds between a quiet phase (only
// replaces of pinned keys: no entry moves) and a churn phase (everything),
// so a fault that a move would mask (a reader that retries after a move
// finds the key again) shows in the quiet phase.
//
// Every entry's fields are a function of (key, version, origin), so a torn
// read shows as an inconsistent entry. The readers check:
// - every read is consistent (Lookup, LookupBatch, Iterate);
// - a pinned key is never missed (Lookup, LookupBatch), and is visited
//   exactly once by every whole walk (Iterate);
// - a pinned key's (version, origin) never goes back for one reader (a read
//   of a record not yet published, then of the published one, would).
// The inbound queue is driven by one producer and one consumer that check
// the sequence of frames they pass.
//
// Usage: table_stress [SECONDS=3 [MIN_PINNED_READS=0]]. Exit status 0: no
// fault found; 1: a fault (the run stops at the first one), or too little
// work done to mean anything.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "affinity_table.h"
#include "inbound_queue.h"
#include "key_hash.h"

using namespace affinityd;

namespace {

std::atomic<uint64_t> race_pauses{0};

}  // namespace

// How often a race point pauses this thread (one point in 2^pause_bits),
// and how. A reader spins or, half the time, yields its core, so that
// writers run several operations (a record passes to another key and back)
// before it reads on; a fault may need it paused at two points of one
// lookup, so it pauses often. A writer
// spins for up to about 4 us, keeping its core and the state it is in (an
// entry in two slots mid-move, a record written but not yet published) while
// a reader on the other core reads it; it pauses often in the churn phase
// and seldom in the quiet phase, where it should replace fast.
thread_local unsigned pause_bits = 3;
thread_local bool pause_yields = false;

namespace affinityd {
void TableRacePoint() {
  thread_local uint64_t x = 0x9E3779B97F4A7C15ull ^ uint64_t(std::hash<std::thread::id>()(std::this_thread::get_id()));
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  if ((x & ((1u << pause_bits) - 1)) != 0) return;
  race_pauses.fetch_add(1, std::memory_order_relaxed);
  if (pause_yields && (x & (1u << 20))) {
    std::this_thread::yield();
  } else {
    for (uint64_t n = (x >> 16) & 63; n > 0; n--) asm volatile("pause" ::: "memory");  // about 70 ns each here
  }
}
}  // namespace affinityd

namespace {

constexpr uint32_t kNow = 1000000;
constexpr size_t kPinned = 16;  // keys 0-7 fixed, 8-15 mobile
constexpr size_t kFixed = 8;
constexpr size_t kCrowd = 6;    // churn keys per pinned key whose home is at most 3 slots before its home
constexpr size_t kChurn = 1500;
constexpr size_t kKeys = kPinned + kChurn;

struct Key {
  uint8_t bytes[kMaxKeyOctets];
  size_t len;
};

Key MakeKey(uint32_t id) {
  Key k;
  std::string user = "user-" + std::to_string(id) + std::string(id % 50, 'x');
  k.bytes[0] = 2;
  k.bytes[1] = 4;
  std::memcpy(k.bytes + 2, &id, 4);
  std::memcpy(k.bytes + 6, user.data(), user.size());
  k.len = 6 + user.size();
  return k;
}

// keys[i] for i < kPinned are the pinned keys; then the crowd of each pinned
// key; then other churn keys. A key's bytes carry the id it was made from;
// index_of[id] is its index.
std::vector<Key> keys;
std::vector<int32_t> index_of;
size_t crowd_begin = kPinned, crowd_end = kPinned;

void ChooseKeys(const AffinityTable& t) {
  std::vector<Key> crowd, other;
  std::vector<size_t> crowd_count(kPinned, 0);
  std::vector<size_t> homes;
  for (uint32_t id = 0; id < kPinned; id++) {
    keys.push_back(MakeKey(id));
    homes.push_back(t.HomeSlot(keys.back().bytes, keys.back().len));
  }
  const size_t mask = t.SlotCount() - 1;
  uint32_t id = kPinned;
  while (crowd.size() < kPinned * kCrowd || other.size() < kChurn - kPinned * kCrowd) {
    Key k = MakeKey(id++);
    size_t h = t.HomeSlot(k.bytes, k.len);
    bool placed = false;
    for (size_t p = 0; p < kPinned && !placed; p++) {
      if (((homes[p] - h) & mask) <= 3 && crowd_count[p] < kCrowd) {
        crowd_count[p]++;
        crowd.push_back(k);
        placed = true;
      }
    }
    if (!placed && other.size() < kChurn - kPinned * kCrowd) other.push_back(k);
  }
  crowd_begin = keys.size();
  keys.insert(keys.end(), crowd.begin(), crowd.end());
  crowd_end = keys.size();
  keys.insert(keys.end(), other.begin(), other.end());
  index_of.assign(id, -1);
  for (size_t i = 0; i < keys.size(); i++) {
    uint32_t kid;
    std::memcpy(&kid, keys[i].bytes + 2, 4);
    index_of[kid] = int32_t(i);
  }
}

// The index of the key a view holds, or kKeys if it is none of ours.
size_t IndexOf(const EntryView& e) {
  if (e.key_len < 6) return kKeys;
  uint32_t id;
  std::memcpy(&id, e.key + 2, 4);
  if (id >= index_of.size() || index_of[id] < 0) return kKeys;
  size_t i = size_t(index_of[id]);
  return e.key_len == keys[i].len && std::memcmp(e.key, keys[i].bytes, e.key_len) == 0 ? i : kKeys;
}

bool Pinned(size_t i) { return i < kPinned; }

// The fields an entry of key i at (version v, origin o) must have. Each
// field depends on v, so fields of two versions do not pass for one.
EntryFields Expected(size_t i, uint32_t v, uint32_t o) {
  EntryFields f;
  f.version = v;
  f.origin_node = o;
  f.endpoint_id = uint32_t((i * 2654435761u) ^ (v * 40503u) ^ (o << 19)) & 0xFFFFF;
  f.created_s = kNow - 1 - (v * 7 + uint32_t(i)) % 500;
  bool born_expired = !Pinned(i) && v % 7 == 0;
  f.expires_s = born_expired ? kNow : kNow + 1000 + v % 97;
  return f;
}

std::atomic<bool> stop{false};
std::atomic<bool> quiet{false};
std::atomic<uint64_t> reads{0}, writes{0}, walks{0}, pinned_reads{0}, mobile_moves{0};

enum Fault { kTorn, kFalseMiss, kWentBack, kWalkCount, kWalkTwice, kWalkKey, kQueue, kFaults };
const char* const kFaultNames[kFaults] = {"inconsistent (torn) read",
                                          "pinned key missed",
                                          "version went back",
                                          "walk visited a pinned key not once",
                                          "walk listed one entry twice",
                                          "walk listed a key that does not exist",
                                          "queue"};
std::atomic<uint64_t> faults[kFaults];

void Fail(Fault f, size_t key, const char* where, uint64_t a = 0, uint64_t b = 0) {
  uint64_t n = faults[f].fetch_add(1);
  if (n < 5)
    std::fprintf(stderr, "FAULT %s: key %zu, %s (%llu, %llu)%s\n", kFaultNames[f], key, where, (unsigned long long)a,
                 (unsigned long long)b, quiet.load() ? " [quiet phase]" : " [churn phase]");
}

bool Consistent(size_t i, const EntryFields& f) {
  EntryFields e = Expected(i, f.version, f.origin_node);
  return e.endpoint_id == f.endpoint_id && e.created_s == f.created_s && e.expires_s == f.expires_s;
}

uint64_t Rand(uint64_t* x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

// The hot pair: key 0 (fixed) and key 8 (mobile).
size_t HotPair(uint64_t r) { return (r >> 42) & 1 ? 0 : kFixed; }
// Pinned keys: the hot pair a third of the time, else one of the 16.
size_t PickPinned(uint64_t r) { return (r >> 40) % 3 == 0 ? HotPair(r) : (r >> 44) % kPinned; }

// One version counter per key shared by both writers, so most writes of
// either are newer than what is stored (some lose the race: ignored).
std::atomic<uint32_t> versions[kKeys];
// A mobile key's presence: odd while writer 1 removes and reinserts it. A
// reader that reads the same even number before and after a lookup knows
// the key was in the table for the whole lookup. (Writer 2 may insert the
// key while it is odd; that only makes it present.)
std::atomic<uint64_t> epochs[kPinned];

UpsertResult Put(AffinityTable& t, size_t i, uint32_t origin) {
  uint32_t v = versions[i].fetch_add(1, std::memory_order_relaxed) + 1;
  return t.Upsert(keys[i].bytes, keys[i].len, Expected(i, v, origin), kNow);
}

// Writer 1 takes a mobile key out and puts it back: it goes to the end of
// its chain, behind its crowd, and moves back as the crowd churns.
void MoveMobile(AffinityTable& t, size_t i, uint64_t* x) {
  // The increments pair with the readers' acquire loads: the odd one is
  // ordered before the removal's slot stores, the even one after the insert.
  epochs[i].fetch_add(1, std::memory_order_release);
  t.Remove(keys[i].bytes, keys[i].len);
  for (;;) {
    UpsertResult r = Put(t, i, 1);
    if (r != UpsertResult::kFull) break;
    size_t c = kPinned + Rand(x) % kChurn;  // make room
    t.Remove(keys[c].bytes, keys[c].len);
  }
  epochs[i].fetch_add(1, std::memory_order_release);
  mobile_moves.fetch_add(1, std::memory_order_relaxed);
}

void Writer(AffinityTable& t, uint32_t origin) {
  uint64_t x = 0x1234567 * origin;
  while (!stop.load(std::memory_order_relaxed)) {
    uint64_t r = Rand(&x);
    writes.fetch_add(1, std::memory_order_relaxed);
    bool q = quiet.load(std::memory_order_relaxed);
    // Quiet: replace fast, many times within one reader pause. Churn: pause
    // often, mid-move, for readers to see entries in two slots.
    pause_bits = q ? 6 : 3;
    if (q) {
      // Mostly the hot pair, so records pass between two keys and back
      // while a reader is between two loads (the ABA a slot check outside
      // the seqlock window misses).
      Put(t, (r & 7) != 0 ? HotPair(r) : PickPinned(r), origin);
      continue;
    }
    if ((r & 3) == 0) {
      Put(t, PickPinned(r), origin);
      continue;
    }
    if (origin == 1 && ((r >> 2) & 15) == 0) {
      MoveMobile(t, kFixed + (r >> 32) % (kPinned - kFixed), &x);
      continue;
    }
    // half the churn on the crowds around the pinned keys
    size_t i = (r >> 6) & 1 ? crowd_begin + (r >> 20) % (crowd_end - crowd_begin) : kPinned + (r >> 20) % kChurn;
    switch ((r >> 8) & 15) {
      case 0:
      case 1:
      case 2:
        t.Remove(keys[i].bytes, keys[i].len);
        break;
      case 3:
        t.Sweep(kNow + 1, 64);
        break;
      default:
        Put(t, i, origin);
    }
  }
}

// A reader's last read of a pinned key, and the presence epoch it was in.
struct Seen {
  uint32_t v = 0, o = 0;
  uint64_t epoch = UINT64_MAX;
};

// A pinned key's read, between epoch loads e1 and e2: found if the key was
// in the table throughout (e1 == e2, even), consistent, and not older than
// this reader's last read of it in the same epoch (after a removal an older
// version may come back: a writer that took its version number before the
// removal inserts it after).
void CheckPinned(size_t i, bool found, uint64_t e1, uint64_t e2, const EntryFields& f, Seen* last, const char* where) {
  pinned_reads.fetch_add(1, std::memory_order_relaxed);
  bool stable = e1 == e2 && (e1 & 1) == 0;
  if (!found) {
    if (stable) Fail(kFalseMiss, i, where);
    return;
  }
  if (!Consistent(i, f)) return Fail(kTorn, i, where, f.version, f.origin_node);
  if (!stable) {
    last[i].epoch = UINT64_MAX;
    return;
  }
  if (last[i].epoch == e1 && AffinityTable::Newer(last[i].v, last[i].o, f.version, f.origin_node))
    return Fail(kWentBack, i, where, last[i].v, f.version);
  last[i] = {f.version, f.origin_node, e1};
}

void LoadEpochs(uint64_t* e) {
  for (size_t k = 0; k < kPinned; k++) e[k] = epochs[k].load(std::memory_order_acquire);
}
bool Stable(const uint64_t* before, const uint64_t* after, size_t k) {
  return before[k] == after[k] && (before[k] & 1) == 0;
}

// What a walk lists: every key's (version, origin) seen so far. Every write
// has a version of its own (one counter per key), so one key listed twice
// with the same version is one entry listed twice, whatever the writers did;
// the same key with two versions is allowed (removed and inserted again
// during the walk).
class Listing {
 public:
  explicit Listing(const char* where) : where_(where) {}
  void Add(const EntryView& e) {
    size_t k = IndexOf(e);
    if (k >= kKeys) return Fail(kWalkKey, k, where_);
    if (!Consistent(k, e.fields)) return Fail(kTorn, k, where_, e.fields.version, e.fields.origin_node);
    for (const auto& x : seen_)
      if (x.k == k && x.v == e.fields.version && x.o == e.fields.origin_node) return Fail(kWalkTwice, k, where_, x.v);
    seen_.push_back({k, e.fields.version, e.fields.origin_node});
    if (k < kPinned) count_[k]++;
  }
  uint32_t count(size_t k) const { return count_[k]; }

 private:
  struct Item {
    size_t k;
    uint32_t v, o;
  };
  const char* where_;
  std::vector<Item> seen_;
  uint32_t count_[kPinned] = {};
};

void Walk(const AffinityTable& t) {
  Listing listed("walk");
  uint64_t before[kPinned], after[kPinned];
  LoadEpochs(before);
  size_t cursor = 0;
  while (cursor < t.SlotCount()) t.Iterate(&cursor, 64, kNow, [&](const EntryView& e, size_t) { listed.Add(e); });
  LoadEpochs(after);
  for (size_t k = 0; k < kPinned; k++)
    if (listed.count(k) != 1 && Stable(before, after, k)) Fail(kWalkCount, k, "walk", listed.count(k));
  walks.fetch_add(1, std::memory_order_relaxed);
}

// The walk of one pinned key's home (Iterate from its home with max 1 lists
// that home's entries): the key exactly once if it was there throughout, and
// no entry twice.
void WalkHome(const AffinityTable& t, size_t i) {
  Listing listed("home walk");
  uint64_t e1 = epochs[i].load(std::memory_order_acquire);
  size_t home = t.HomeSlot(keys[i].bytes, keys[i].len);
  // the homes of its crowd too (up to 3 before), whose keys move all the time
  size_t cursor = home >= 3 ? home - 3 : 0;
  while (cursor <= home) t.Iterate(&cursor, 1, kNow, [&](const EntryView& e, size_t) { listed.Add(e); });
  uint64_t e2 = epochs[i].load(std::memory_order_acquire);
  if (listed.count(i) != 1 && e1 == e2 && (e1 & 1) == 0) Fail(kWalkCount, i, "home walk", listed.count(i));
}

// Two readers with roles: the looker looks keys up one by one and in
// batches; the walker walks homes and the whole table (and looks up some).
// In the quiet phase both stay on the hot pair.
void Reader(const AffinityTable& t, unsigned seed, bool walker) {
  pause_bits = 3;
  pause_yields = true;
  uint64_t x = seed * 0x2545F4914F6CDD1Dull;
  Seen last[kPinned];
  const uint8_t* ptrs[32];
  uint16_t lens[32];
  size_t idx[32];
  int32_t endpoints[32];
  uint32_t vers[32], origins[32];
  uint64_t before[kPinned], after[kPinned];
  uint64_t round = 0;
  auto lookup_pinned = [&](size_t i) {
    EntryView e;
    uint64_t e1 = epochs[i].load(std::memory_order_acquire);
    bool found = t.Lookup(keys[i].bytes, keys[i].len, kNow, &e);
    uint64_t e2 = epochs[i].load(std::memory_order_acquire);
    CheckPinned(i, found, e1, e2, e.fields, last, "lookup");
  };
  while (!stop.load(std::memory_order_relaxed)) {
    uint64_t r = Rand(&x);
    reads.fetch_add(1, std::memory_order_relaxed);
    if (quiet.load(std::memory_order_relaxed)) {
      // The hot pair, whose records pass from one key to the other and back.
      if (walker) {
        for (int n = 0; n < 4; n++) WalkHome(t, HotPair(Rand(&x)));
      } else {
        for (int n = 0; n < 32; n++) lookup_pinned(HotPair(Rand(&x)));
      }
      continue;
    }
    if (walker) {
      // home walks of mobile keys (the ones that keep moving back), now and
      // then the whole table
      for (int n = 0; n < 8; n++) WalkHome(t, kFixed + Rand(&x) % (kPinned - kFixed));
      for (int n = 0; n < 4; n++) lookup_pinned(PickPinned(Rand(&x)));
      if ((++round & 7) == 0) Walk(t);
      continue;
    }
    // home walks of mobile keys, pinned keys one by one, and a churn key
    for (int n = 0; n < 2; n++) WalkHome(t, kFixed + Rand(&x) % (kPinned - kFixed));
    for (int n = 0; n < 16; n++) {
      uint64_t q = Rand(&x);
      lookup_pinned(q & 1 ? HotPair(q) : PickPinned(q));
    }
    size_t c = kPinned + (r >> 8) % kChurn;
    EntryView e;
    if (t.Lookup(keys[c].bytes, keys[c].len, kNow, &e)) {
      if (!Consistent(c, e.fields)) Fail(kTorn, c, "lookup", e.fields.version, e.fields.origin_node);
      if (e.fields.expires_s <= kNow) Fail(kTorn, c, "lookup returned an expired entry");
    }
    // a batch: every pinned key, and churn keys
    for (size_t j = 0; j < 32; j++) {
      idx[j] = j < kPinned ? j : kPinned + (r + j * 97) % kChurn;
      ptrs[j] = keys[idx[j]].bytes;
      lens[j] = uint16_t(keys[idx[j]].len);
    }
    LoadEpochs(before);
    t.LookupBatch(ptrs, lens, 32, kNow, endpoints, vers, origins);
    LoadEpochs(after);
    for (size_t j = 0; j < 32; j++) {
      EntryFields f;
      f.version = vers[j];
      f.origin_node = origins[j];
      f.endpoint_id = uint32_t(endpoints[j]);
      EntryFields want = Expected(idx[j], vers[j], origins[j]);
      f.created_s = want.created_s;  // a batch returns no times
      f.expires_s = want.expires_s;
      if (Pinned(idx[j])) {
        CheckPinned(idx[j], endpoints[j] >= 0, before[idx[j]], after[idx[j]], f, last, "batch");
      } else if (endpoints[j] >= 0 && !Consistent(idx[j], f)) {
        Fail(kTorn, idx[j], "batch", vers[j], origins[j]);
      }
    }
  }
}

void QueueStress(double seconds) {
  InboundQueue q(64);
  std::atomic<bool> done{false};
  uint64_t produced = 0, consumed = 0, dropped = 0;
  sockaddr_storage from{};
  std::thread producer([&] {
    uint8_t frame[kMaxFrameSize];
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      size_t len = 8 + produced % 200;
      std::memcpy(frame, &produced, 8);
      std::memset(frame + 8, int(produced & 0xFF), len - 8);
      if (q.Push(frame, len, from, false)) produced++;
      else dropped++;
    }
    done.store(true);
  });
  uint64_t expect = 0;
  for (;;) {
    bool fin = done.load();
    q.Drain(16, [&](const InboundFrame& f) {
      uint64_t n;
      std::memcpy(&n, f.data, 8);
      if (n != expect || f.len != 8 + n % 200 || (f.len > 8 && f.data[f.len - 1] != uint8_t(n & 0xFF)))
        Fail(kQueue, size_t(n), "frame out of order or damaged");
      expect++;
      consumed++;
    });
    if (fin && q.Empty()) break;
  }
  producer.join();
  if (consumed != produced) Fail(kQueue, size_t(consumed), "count");
  std::printf("queue: %llu frames passed in order, %llu refused while full\n", (unsigned long long)consumed,
              (unsigned long long)dropped);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  // The run goes on past `seconds` (up to four times as long) until the
  // readers have made min_reads pinned-key reads and ten whole walks: on a
  // loaded machine it then does about as much work as on a quiet one.
  uint64_t min_reads = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  AffinityTable table(1024, 0x1234);  // fewer entries than keys: the table fills and records recycle
  ChooseKeys(table);
  // The crowds first, then the pinned keys behind them.
  for (size_t i = crowd_begin; i < crowd_end; i++) Put(table, i, 1);
  for (size_t i = 0; i < kPinned; i++) {
    if (Put(table, i, 1) != UpsertResult::kInserted) {
      std::printf("FAILED: could not insert pinned key %zu\n", i);
      return 1;
    }
  }
  std::vector<std::thread> threads;
  threads.emplace_back(Writer, std::ref(table), 1);
  threads.emplace_back(Writer, std::ref(table), 2);
  threads.emplace_back(Reader, std::cref(table), 3, false);
  threads.emplace_back(Reader, std::cref(table), 4, true);
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds), last = start + 4 * std::chrono::duration<double>(seconds);
  uint64_t phases = 0;
  auto found_fault = [] {
    for (auto& f : faults)
      if (f.load()) return true;
    return false;
  };
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    quiet.store(!quiet.load());
    phases++;
    auto now = std::chrono::steady_clock::now();
    if (found_fault() || now >= last || (now >= end && pinned_reads.load() >= min_reads && walks.load() >= 10)) break;
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  const TableCounters& c = table.counters();
  std::printf(
      "table: %llu read rounds (%llu pinned-key reads, %llu whole walks), %llu writes (%llu inserted, %llu replaced, "
      "%llu removed, %llu expired, %llu refused full, %llu mobile keys moved to the end of their chain), "
      "%llu read retries, %llu race-point pauses, %llu phases in %.1f s, %u live\n",
      (unsigned long long)reads.load(), (unsigned long long)pinned_reads.load(), (unsigned long long)walks.load(),
      (unsigned long long)writes.load(), (unsigned long long)c.inserted.load(), (unsigned long long)c.replaced.load(),
      (unsigned long long)c.removed.load(), (unsigned long long)c.expired.load(), (unsigned long long)c.full.load(),
      (unsigned long long)mobile_moves.load(), (unsigned long long)c.read_retries.load(),
      (unsigned long long)race_pauses.load(), (unsigned long long)phases,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), table.Size());
  if (!found_fault()) QueueStress(seconds / 2);
  uint64_t total = 0;
  for (int f = 0; f < kFaults; f++) {
    uint64_t n = faults[f].load();
    if (n) std::printf("FAILED: %llu x %s\n", (unsigned long long)n, kFaultNames[f]);
    total += n;
  }
  if (total) return 1;
  if (reads.load() < 1000 || writes.load() < 1000 || walks.load() < 10 || c.removed.load() == 0 ||
      c.expired.load() == 0 || c.full.load() == 0 || mobile_moves.load() < 100) {
    std::printf("FAILED: too little work done to mean anything\n");
    return 1;
  }
  std::printf("ok: no torn, stale or missed read, every walk saw every pinned key once\n");
  return 0;
}
