// The affinity table's large arrays (slots and records) in anonymous
// mappings advised for transparent huge pages (MADV_HUGEPAGE). A lookup at a
// random place in a table of a million entries touches memory no cache
// holds; with 4 KiB pages it also misses the TLB and walks the page tables
// (under a hypervisor, a two-dimensional walk of up to 24 memory reads),
// with 2 MiB pages the whole table fits in the TLB. Linux honours the advice
// when /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always";
// with "never", or where the kernel refuses, the array is the same memory in
// 4 KiB pages. Arrays under kHugeArrayMinBytes (a small table: tests, small
// sites) are plain heap arrays: rounding them up to 2 MiB would waste more
// than it saves.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace affinityd {

constexpr size_t kHugePageBytes = size_t(2) << 20;
constexpr size_t kHugeArrayMinBytes = size_t(4) << 20;

template <typename T>
class HugeArray {
  static_assert(std::is_trivially_destructible_v<T>, "elements are never destroyed one by one");

 public:
  // n default-initialized elements (as new T[n]: the owner sets them);
  // throws std::bad_alloc when there is no memory.
  explicit HugeArray(size_t n) : bytes_(n * sizeof(T)) {
    if (bytes_ >= kHugeArrayMinBytes && Map()) {
      for (size_t i = 0; i < n; i++) new (&p_[i]) T;
      return;
    }
    p_ = new T[n];
  }
  ~HugeArray() {
    if (map_) munmap(map_, map_bytes_);
    else delete[] p_;
  }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;

  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  // Bytes advised for huge pages (0: a heap array, or the advice was refused).
  size_t advised_bytes() const { return advised_ ? map_bytes_ : 0; }

 private:
  // A mapping that starts on a 2 MiB boundary (huge pages need aligned
  // ranges), advised. Its length is rounded to base pages only: the kernel
  // backs every whole 2 MiB of it with huge pages and the tail with 4 KiB
  // ones, so no memory is spent on rounding.
  bool Map() {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t len = (bytes_ + page - 1) & ~(page - 1);
    void* m = mmap(nullptr, len + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    const uintptr_t start = reinterpret_cast<uintptr_t>(m);
    const uintptr_t aligned = (start + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
    // give back the slack before and after the aligned range
    if (aligned > start) munmap(m, aligned - start);
    const uintptr_t end = aligned + len;
    const uintptr_t map_end = start + len + kHugePageBytes;
    if (map_end > end) munmap(reinterpret_cast<void*>(end), map_end - end);
    map_ = reinterpret_cast<void*>(aligned);
    map_bytes_ = len;
#ifdef MADV_HUGEPAGE
    advised_ = madvise(map_, len, MADV_HUGEPAGE) == 0;
#endif
    p_ = static_cast<T*>(map_);
    return true;
  }

  size_t bytes_;
  T* p_ = nullptr;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  bool advised_ = false;
};

}  // namespace affinityd
