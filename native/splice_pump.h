// The front ends' data plane: carries the octets of spliced calls between a
// client's and its endpoint's TCP sockets with splice(2) through a pipe per
// direction, on one I/O thread (epoll), without copies through user space
// (docs/design.md, "Front ends"; docs/frontend.md, "Connecting and splicing").
// Plain C++: no N-API here (native/addon/js_splice_pump.h is the binding).
//
// A call is handed over as two connected, non-blocking TCP sockets (the pump
// dup()s them: the caller closes its own fds) plus octets the caller had
// already read and must be written first. From then on the pump owns it:
// backpressure (a side is read only while the pipe toward its peer has room),
// half-close carried across (a FIN read from one side, once its pipe is
// drained, becomes shutdown(SHUT_WR) on the other), errors and resets (both
// sides closed at once), the idle time-out (no octet either way), the linger
// (when one side is done for good, the other has linger_ms to take what is
// left and finish, then it is closed), and a close asked for by the caller.
// Every call ends in exactly one SpliceCompletion.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace affinityd {

// How a call ended (SpliceResult.reason in src/frontend/splice.ts).
enum class SpliceEnd : uint8_t {
  kClosed = 0,       // both sides finished, or closed by the caller or the pump's close
  kIdleTimeout = 1,  // no octet either way for the call's idle time-out
  kError = 2,        // a reset or another socket error on either side
};

struct SpliceCompletion {
  uint64_t id;
  uint64_t bytes_from_client;  // octets written to the endpoint (the handed-over ones included)
  uint64_t bytes_to_client;    // octets written to the client (the handed-over ones included)
  SpliceEnd reason;
  int error;  // errno behind kError (0 otherwise)
};

struct SplicePumpOptions {
  uint32_t linger_ms = 5000;
  // F_SETPIPE_SZ for each pipe; 0 keeps the kernel's default (64 KiB here).
  uint32_t pipe_size = 0;
  // Empty pipes kept for the next calls (two per call at most).
  size_t pipe_pool = 64;
};

struct SplicePumpStats {
  uint64_t calls_added;
  uint64_t calls_done;
  uint64_t calls_open;
  uint64_t pipes_created;
  uint64_t pipes_pooled;  // free in the pool now
};

class SplicePump {
 public:
  // `notify` is called on the I/O thread when completions wait and none was
  // signalled since the last Drain() found the queue empty; it must not block.
  static std::unique_ptr<SplicePump> Start(const SplicePumpOptions& o, std::function<void()> notify, std::string* err);
  ~SplicePump();  // Stop()
  SplicePump(const SplicePump&) = delete;
  SplicePump& operator=(const SplicePump&) = delete;

  // Takes over a call: dup()s both fds (the caller keeps and closes its own).
  // to_endpoint / to_client are written before any spliced octet of their
  // direction. Returns the call's id (> 0), or 0 with *err set (errno) when a
  // dup fails or the pump is stopped; then nothing was taken.
  uint64_t Add(int client_fd, int endpoint_fd, const uint8_t* to_endpoint, size_t to_endpoint_len,
               const uint8_t* to_client, size_t to_client_len, uint32_t idle_timeout_ms, int* err);
  // Closes a call now (its completion follows, reason kClosed); an id that has
  // ended already is ignored.
  void Close(uint64_t id);
  // Closes every open call (a completion for each).
  void CloseAll();
  // Closes every call (no completions any more), joins the thread, frees the
  // pipes. Idempotent.
  void Stop();

  // Any thread (the binding: the JS thread): hands at most `max` completions
  // to f; returns true if more wait (then call Drain again: no new notify
  // comes for them).
  bool Drain(size_t max, const std::function<void(const SpliceCompletion&)>& f);

  SplicePumpStats stats() const;

 private:
  struct Call;
  struct Direction;
  struct Command {
    enum Kind : uint8_t { kAdd, kClose, kCloseAll } kind;
    uint64_t id;
    Call* call;  // kAdd: owned by the command until the thread takes it
  };

  SplicePump(const SplicePumpOptions& o, std::function<void()> notify);
  void Run();
  void RunCommands();
  void Register(Call* c);
  void OnEvent(uint64_t data, uint32_t events);
  // Both directions until nothing moves (or the turn is used up); may end the call.
  void Pump(Call* c);
  // One direction: 0, or the errno that ends the call; *progress set when something moved.
  int PumpDirection(Call* c, int d, bool* progress);
  bool TakePipe(Direction& d);
  void GivePipe(Direction& d);  // to the pool if empty and there is room, else closed
  void Finish(Call* c, SpliceEnd why, int error);
  void Sweep(uint64_t now_ms);
  void Complete(const SpliceCompletion& done);

  const SplicePumpOptions options_;
  const std::function<void()> notify_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: commands wait, or stop
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::atomic<uint64_t> next_id_{1};

  // JS thread -> I/O thread
  std::mutex commands_mu_;
  std::vector<Command> commands_;

  // I/O thread only
  std::unordered_map<uint64_t, Call*> calls_;
  std::vector<int> pipes_;      // the pool, triples: read end, write end, capacity
  std::vector<uint64_t> again_;  // calls to pump again after the next epoll_wait
  uint64_t now_ms_ = 0;          // CLOCK_MONOTONIC after the last epoll_wait
  uint64_t next_sweep_ms_ = 0;   // no idle or linger deadline before this

  // I/O thread -> JS thread. Bounded by the calls open: one completion per call.
  mutable std::mutex done_mu_;
  std::deque<SpliceCompletion> done_;
  bool notify_pending_ = false;  // a notify was raised and Drain has not found the queue empty since

  std::atomic<uint64_t> calls_added_{0}, calls_done_{0}, pipes_created_{0}, pipes_pooled_{0};
};

}  // namespace affinityd
