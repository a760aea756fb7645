// What a node's responder did and refused, by reason. Written by the I/O
// thread (and the JS thread's send path and reply reads), read by JS at any time: relaxed
// atomics, since each counter is read on its own.
#pragma once
#include <atomic>
#include <cstdint>

#include "wire.h"

namespace affinityd {

struct ResponderCounters {
  std::atomic<uint64_t> verdicts[size_t(Verdict::kCount)] = {};  // by Verdict
  std::atomic<uint64_t> received{0};          // datagrams read from the sockets
  std::atomic<uint64_t> queries_answered{0};  // clients of QUERYs answered from the table
  std::atomic<uint64_t> queries_unanswered{0};// clients of QUERYs not in the table
  std::atomic<uint64_t> queries_deferred{0};  // clients held here but left to a higher rank (answer_rank)
  std::atomic<uint64_t> replies_sent{0};      // REPLY frames sent by the I/O thread
  std::atomic<uint64_t> claims_won{0};        // CLAIM proposals stored here (first writer)
  std::atomic<uint64_t> claims_lost{0};       // CLAIM proposals answered with the entry held
  std::atomic<uint64_t> claims_not_ready{0};  // CLAIM frames left unanswered: this node is not ready
  std::atomic<uint64_t> claims_held_handover{0};  // proposals left unanswered in a handover (ResponderOptions::handover_hold_ms)
  std::atomic<uint64_t> claims_not_arbiter{0};    // first-entry proposals left unanswered: an arbiter past its handover outranks this node
  std::atomic<uint64_t> hellos_sent{0};
  std::atomic<uint64_t> hellos_received{0};
  std::atomic<uint64_t> updates_applied{0};   // UPDATE stored (inserted or replaced)
  std::atomic<uint64_t> updates_ignored{0};   // UPDATE older than the stored entry
  std::atomic<uint64_t> table_full{0};        // UPDATE refused: table full
  std::atomic<uint64_t> endpoints_full{0};    // UPDATE refused: endpoint registry full
  std::atomic<uint64_t> queue_full{0};        // frame for JS dropped: queue full
  std::atomic<uint64_t> delivered{0};         // frames handed to JS
  std::atomic<uint64_t> replies_read{0};      // REPLY frames the JS thread read from the reply socket
  std::atomic<uint64_t> sent{0};              // frames sent (I/O thread and JS)
  std::atomic<uint64_t> send_errors{0};       // frames the kernel refused
  std::atomic<uint64_t> swept{0};             // expired entries removed by the I/O thread

  void Count(Verdict v) { verdicts[size_t(v)].fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace affinityd
