// Stress test of the affinity table and the inbound queue, meant to run
// under ThreadSanitizer (see CMakeLists.txt; `npm test` runs it).
//
// Two writers (as in a node: the JS thread and the I/O thread) upsert,
// replace, remove and sweep entries of a small key set in a small table, so
// records are recycled all the time. Readers look keys up one by one, in
// batches, and iterate. Every entry's fields are a function of its key and
// version, so a torn read (fields of two records, or half a key) shows up as
// an inconsistent entry. The inbound queue is driven by one producer and one
// consumer that check the sequence of frames they pass.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../affinity_table.h"
#include "../inbound_queue.h"
#include "../key_hash.h"

using namespace affinityd;

namespace {

constexpr uint32_t kNow = 1000;
constexpr size_t kKeys = 1500;

struct Key {
  uint8_t bytes[kMaxKeyOctets];
  size_t len;
};

std::vector<Key> MakeKeys() {
  std::vector<Key> keys(kKeys);
  for (size_t i = 0; i < kKeys; i++) {
    Key& k = keys[i];
    std::string user = "user-" + std::to_string(i) + std::string(i % 50, 'x');
    k.bytes[0] = 2;
    k.bytes[1] = 4;
    std::memcpy(k.bytes + 2, &i, 4);
    std::memcpy(k.bytes + 6, user.data(), user.size());
    k.len = 6 + user.size();
  }
  return keys;
}

// The fields an entry of key i at version v must have.
EntryFields Expected(size_t i, uint32_t v) {
  EntryFields f;
  f.version = v;
  f.endpoint_id = uint32_t((i * 2654435761u) ^ v) & 0xFFFFF;
  f.origin_node = uint32_t(i * 31 + v * 17);
  f.created_s = kNow;
  f.expires_s = (v % 7 == 0) ? kNow : kNow + 1000;  // some are born expired
  return f;
}

// Most operations hit a few hot keys, so their records are recycled while
// readers are reading them: the case the seq and slot checks exist for.
size_t Pick(uint64_t x) { return (x >> 32) % 8 < 7 ? x % 8 : x % kKeys; }

std::atomic<bool> stop{false};
std::atomic<uint64_t> failures{0}, reads{0}, writes{0};

void Fail(const char* what, size_t i) {
  if (failures.fetch_add(1) < 10) std::fprintf(stderr, "INCONSISTENT %s (key %zu)\n", what, i);
}

bool Consistent(size_t i, const EntryFields& f) {
  EntryFields e = Expected(i, f.version);
  return e.endpoint_id == f.endpoint_id && e.origin_node == f.origin_node && e.created_s == f.created_s &&
         e.expires_s == f.expires_s;
}

void Writer(AffinityTable& t, const std::vector<Key>& keys, unsigned seed) {
  uint64_t x = seed;
  std::vector<uint32_t> version(kKeys, 0);
  while (!stop.load(std::memory_order_relaxed)) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t i = Pick(x);
    // each writer owns half the versions (odd/even origin) so both make progress
    uint32_t v = ++version[i] * 2 + (seed & 1);
    switch (x >> 60) {
      case 0: t.Remove(keys[i].bytes, keys[i].len); break;
      case 1: t.Sweep(kNow + 1, 64); break;
      default: t.Upsert(keys[i].bytes, keys[i].len, Expected(i, v), kNow);
    }
    writes.fetch_add(1, std::memory_order_relaxed);
  }
}

void Reader(const AffinityTable& t, const std::vector<Key>& keys, unsigned seed) {
  uint64_t x = seed;
  const uint8_t* ptrs[32];
  uint16_t lens[32];
  size_t idx[32];
  int32_t endpoints[32];
  uint32_t versions[32];
  while (!stop.load(std::memory_order_relaxed)) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t i = Pick(x);
    EntryView e;
    if (t.Lookup(keys[i].bytes, keys[i].len, kNow, &e)) {
      if (!Consistent(i, e.fields)) Fail("lookup", i);
      if (e.fields.expires_s <= kNow) Fail("lookup returned an expired entry", i);
    }
    for (size_t j = 0; j < 32; j++) {
      idx[j] = j < 16 ? (i + j) % 8 : (i + j * 97) % kKeys;
      ptrs[j] = keys[idx[j]].bytes;
      lens[j] = uint16_t(keys[idx[j]].len);
    }
    t.LookupBatch(ptrs, lens, 32, kNow, endpoints, versions);
    for (size_t j = 0; j < 32; j++) {
      if (endpoints[j] < 0) continue;
      if (Expected(idx[j], versions[j]).endpoint_id != uint32_t(endpoints[j])) Fail("batch", idx[j]);
    }
    if ((x & 0xFF) == 0) {
      size_t cursor = 0;
      while (cursor < t.SlotCount()) {
        t.Iterate(&cursor, 64, kNow, [&](const EntryView& v, size_t) {
          size_t k;
          std::memcpy(&k, v.key + 2, 4);
          k &= 0xFFFFFFFF;
          if (k >= kKeys || v.key_len != keys[k].len || std::memcmp(v.key, keys[k].bytes, v.key_len) != 0)
            Fail("iterate: key", k);
          else if (!Consistent(k, v.fields))
            Fail("iterate: fields", k);
        });
      }
    }
    reads.fetch_add(1, std::memory_order_relaxed);
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
        Fail("queue", size_t(n));
      expect++;
      consumed++;
    });
    if (fin && q.Empty()) break;
  }
  producer.join();
  if (consumed != produced) Fail("queue: count", size_t(consumed));
  std::printf("queue: %llu frames passed in order, %llu refused while full\n", (unsigned long long)consumed,
              (unsigned long long)dropped);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  auto keys = MakeKeys();
  AffinityTable table(1024, 0x1234);  // fewer entries than keys: the table fills and records recycle
  std::vector<std::thread> threads;
  threads.emplace_back(Writer, std::ref(table), std::cref(keys), 1);
  threads.emplace_back(Writer, std::ref(table), std::cref(keys), 2);
  threads.emplace_back(Reader, std::cref(table), std::cref(keys), 3);
  threads.emplace_back(Reader, std::cref(table), std::cref(keys), 4);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& t : threads) t.join();
  const TableCounters& c = table.counters();
  std::printf("table: %llu reads, %llu writes, %llu read retries, %llu refused full, %u live\n",
              (unsigned long long)reads.load(), (unsigned long long)writes.load(),
              (unsigned long long)c.read_retries.load(), (unsigned long long)c.full.load(), table.Size());
  QueueStress(seconds / 2);
  if (failures.load()) {
    std::printf("FAILED: %llu inconsistent reads\n", (unsigned long long)failures.load());
    return 1;
  }
  if (reads.load() < 1000 || writes.load() < 1000) {
    std::printf("FAILED: too little work done to mean anything\n");
    return 1;
  }
  std::printf("ok: no torn or inconsistent read\n");
  return 0;
}
