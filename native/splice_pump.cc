#include "splice_pump.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>

namespace affinityd {

namespace {

constexpr uint64_t kWakeData = ~uint64_t(0);  // epoll data of the eventfd (call ids are < 2^63)
constexpr uint64_t kNever = ~uint64_t(0);
// Rounds of one call's directions per wake-up before the other calls get
// theirs: a call that stays ready is queued to run again after the next
// epoll_wait (edge-triggered: no new event would come for it).
constexpr int kRoundsPerTurn = 8;
constexpr int kEventsPerWait = 256;

uint64_t MonoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

struct SplicePump::Direction {
  int pipe[2] = {-1, -1};  // read end, write end; taken from the pool at the first read
  size_t pipe_bytes = 0;   // the pipe's capacity
  size_t in_pipe = 0;      // octets read from the source and not yet written to the destination
  std::string pending;     // handed-over octets, written before any spliced one
  size_t pending_off = 0;
  bool eof = false;   // the source sent FIN (read returned 0)
  bool shut = false;  // FIN sent to the destination: this direction is done
  uint64_t bytes = 0;  // octets written to the destination
};

// Sides: 0 the client, 1 the endpoint. Direction d reads side d and writes
// side 1 - d: dir[0] carries the client's octets to the endpoint.
struct SplicePump::Call {
  uint64_t id = 0;
  int fd[2] = {-1, -1};
  // Edge-triggered readiness: set by an event, cleared by EAGAIN.
  bool readable[2] = {true, true};
  bool writable[2] = {true, true};
  Direction dir[2];
  uint32_t idle_ms = 0;  // 0: no idle time-out
  uint64_t last_active_ms = 0;
  uint64_t linger_until_ms = 0;  // 0: both sides open
  bool queued = false;           // in again_
};

std::unique_ptr<SplicePump> SplicePump::Start(const SplicePumpOptions& o, std::function<void()> notify, std::string* err) {
  std::unique_ptr<SplicePump> p(new SplicePump(o, std::move(notify)));
  p->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  p->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->epoll_fd_ < 0 || p->wake_fd_ < 0) {
    *err = std::string(p->epoll_fd_ < 0 ? "epoll_create1: " : "eventfd: ") + std::strerror(errno);
    p->stopped_ = true;
    return nullptr;  // the destructor closes what was opened
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeData;
  if (epoll_ctl(p->epoll_fd_, EPOLL_CTL_ADD, p->wake_fd_, &ev) < 0) {
    *err = std::string("epoll_ctl: ") + std::strerror(errno);
    p->stopped_ = true;
    return nullptr;
  }
  try {
    p->thread_ = std::thread([raw = p.get()] {
      pthread_setname_np(pthread_self(), "affinityd-splic");  // 15 characters at most
      raw->Run();
    });
  } catch (const std::system_error& e) {  // e.g. EAGAIN: no thread to be had
    *err = std::string("thread: ") + e.what();
    p->stopped_ = true;
    return nullptr;
  }
  return p;
}

SplicePump::SplicePump(const SplicePumpOptions& o, std::function<void()> notify) : options_(o), notify_(std::move(notify)) {}

SplicePump::~SplicePump() {
  Stop();
  CloseFd(epoll_fd_);
  CloseFd(wake_fd_);
}

uint64_t SplicePump::Add(int client_fd, int endpoint_fd, const uint8_t* to_endpoint, size_t to_endpoint_len,
                         const uint8_t* to_client, size_t to_client_len, uint32_t idle_timeout_ms, int* err) {
  if (stopping_.load()) {
    *err = ESHUTDOWN;
    return 0;
  }
  // dup: the caller's runtime closes its own fds; the socket lives on in ours
  int c = fcntl(client_fd, F_DUPFD_CLOEXEC, 0);
  if (c < 0) {
    *err = errno;
    return 0;
  }
  int e = fcntl(endpoint_fd, F_DUPFD_CLOEXEC, 0);
  if (e < 0) {
    *err = errno;
    close(c);
    return 0;
  }
  // O_NONBLOCK is a flag of the shared file description (libuv set it already)
  for (int fd : {c, e}) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  Call* call = new Call();
  call->id = next_id_.fetch_add(1);
  call->fd[0] = c;
  call->fd[1] = e;
  call->idle_ms = idle_timeout_ms;
  if (to_endpoint_len) call->dir[0].pending.assign(reinterpret_cast<const char*>(to_endpoint), to_endpoint_len);
  if (to_client_len) call->dir[1].pending.assign(reinterpret_cast<const char*>(to_client), to_client_len);
  const uint64_t id = call->id;
  calls_added_.fetch_add(1);
  bool wake;
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    wake = commands_.empty();  // else a wake-up is on its way (Run reads the eventfd before taking the list)
    commands_.push_back({Command::kAdd, id, call});
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
  return id;
}

void SplicePump::Close(uint64_t id) {
  if (stopping_.load()) return;
  bool wake;
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    wake = commands_.empty();
    commands_.push_back({Command::kClose, id, nullptr});
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void SplicePump::CloseAll() {
  if (stopping_.load()) return;
  bool wake;
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    wake = commands_.empty();
    commands_.push_back({Command::kCloseAll, 0, nullptr});
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void SplicePump::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  // The thread is gone: what it owned is closed here, without completions.
  for (auto& [id, c] : calls_) {
    for (int s = 0; s < 2; s++) CloseFd(c->fd[s]);
    for (auto& d : c->dir) {
      CloseFd(d.pipe[0]);
      CloseFd(d.pipe[1]);
    }
    delete c;
  }
  calls_.clear();
  for (Command& cmd : commands_) {
    if (cmd.kind != Command::kAdd) continue;
    CloseFd(cmd.call->fd[0]);
    CloseFd(cmd.call->fd[1]);
    delete cmd.call;
  }
  commands_.clear();
  for (size_t i = 0; i + 2 < pipes_.size(); i += 3) {
    CloseFd(pipes_[i]);
    CloseFd(pipes_[i + 1]);
  }
  pipes_.clear();
  pipes_pooled_.store(0);
  // no fd of the pump's outlives Stop (the JS object may be collected much later)
  CloseFd(epoll_fd_);
  CloseFd(wake_fd_);
}

bool SplicePump::Drain(size_t max, const std::function<void(const SpliceCompletion&)>& f) {
  std::vector<SpliceCompletion> out;
  bool more;
  {
    std::lock_guard<std::mutex> g(done_mu_);
    size_t n = std::min(max, done_.size());
    out.assign(done_.begin(), done_.begin() + long(n));
    done_.erase(done_.begin(), done_.begin() + long(n));
    more = !done_.empty();
    // Empty: the next completion raises a notify again. Not empty: the
    // caller drains again (the notify it had covers these).
    if (!more) notify_pending_ = false;
  }
  for (const SpliceCompletion& c : out) f(c);
  return more;
}

SplicePumpStats SplicePump::stats() const {
  uint64_t added = calls_added_.load(), done = calls_done_.load();
  return {added, done, added - done, pipes_created_.load(), pipes_pooled_.load()};
}

void SplicePump::Complete(const SpliceCompletion& done) {
  bool raise;
  {
    std::lock_guard<std::mutex> g(done_mu_);
    done_.push_back(done);
    raise = !notify_pending_;
    notify_pending_ = true;
  }
  calls_done_.fetch_add(1);
  if (raise) notify_();
}

void SplicePump::Run() {
  // splice(2) into a socket the peer reset raises SIGPIPE at the writing
  // thread; Node ignores it, a plain program may not: blocked here, it
  // stays pending on this thread and harms nothing (the error is EPIPE).
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

  epoll_event events[kEventsPerWait];
  next_sweep_ms_ = kNever;
  while (!stopping_.load()) {
    int timeout = -1;
    if (!again_.empty()) {
      timeout = 0;
    } else if (next_sweep_ms_ != kNever) {
      uint64_t now = MonoMs();
      timeout = next_sweep_ms_ <= now ? 0 : int(std::min<uint64_t>(next_sweep_ms_ - now, INT_MAX));
    }
    int n = epoll_wait(epoll_fd_, events, kEventsPerWait, timeout);
    if (n < 0 && errno != EINTR) break;  // EBADF/EINVAL: only a bug gets here
    now_ms_ = MonoMs();
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == kWakeData) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof count);
        if (stopping_.load()) return;
        RunCommands();
      } else {
        OnEvent(events[i].data.u64, events[i].events);
      }
    }
    // calls that used their turn while still ready
    if (!again_.empty()) {
      std::vector<uint64_t> ids;
      ids.swap(again_);
      for (uint64_t id : ids) {
        auto it = calls_.find(id);
        if (it == calls_.end()) continue;
        it->second->queued = false;
        Pump(it->second);
      }
    }
    if (now_ms_ >= next_sweep_ms_) Sweep(now_ms_);
  }
}

void SplicePump::RunCommands() {
  std::vector<Command> cmds;
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    cmds.swap(commands_);
  }
  for (size_t i = 0; i < cmds.size(); i++) {
    Command& cmd = cmds[i];
    if (cmd.kind == Command::kAdd) {
      Call* c = cmd.call;
      calls_.emplace(c->id, c);
      c->last_active_ms = now_ms_;
      if (c->idle_ms) next_sweep_ms_ = std::min(next_sweep_ms_, now_ms_ + c->idle_ms);
      Register(c);
      if (calls_.count(cmd.id)) Pump(c);
    } else if (cmd.kind == Command::kClose) {
      auto it = calls_.find(cmd.id);
      if (it != calls_.end()) Finish(it->second, SpliceEnd::kClosed, 0);
    } else {
      std::vector<Call*> all;
      for (auto& kv : calls_) all.push_back(kv.second);
      for (Call* c : all) Finish(c, SpliceEnd::kClosed, 0);
    }
  }
}

void SplicePump::Register(Call* c) {
  for (int s = 0; s < 2; s++) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (c->id << 1) | uint64_t(s);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd[s], &ev) < 0) {
      Finish(c, SpliceEnd::kError, errno);
      return;
    }
  }
}

void SplicePump::OnEvent(uint64_t data, uint32_t events) {
  auto it = calls_.find(data >> 1);
  if (it == calls_.end()) return;  // ended earlier in this batch
  Call* c = it->second;
  const int s = int(data & 1);
  if (c->fd[s] < 0) return;
  if (events & EPOLLERR) {
    // A reset or another error: SO_ERROR says which (and clears it, so it is acted on here).
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(c->fd[s], SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0) return Finish(c, SpliceEnd::kError, e);
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable[s] = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->writable[s] = true;
  if (!c->queued) Pump(c);
}

bool SplicePump::TakePipe(Direction& d) {
  if (pipes_.size() >= 3) {
    d.pipe_bytes = size_t(pipes_.back());
    pipes_.pop_back();
    d.pipe[1] = pipes_.back();
    pipes_.pop_back();
    d.pipe[0] = pipes_.back();
    pipes_.pop_back();
    pipes_pooled_.fetch_sub(1);
    return true;
  }
  if (pipe2(d.pipe, O_NONBLOCK | O_CLOEXEC) < 0) return false;
  if (options_.pipe_size) fcntl(d.pipe[1], F_SETPIPE_SZ, int(options_.pipe_size));  // best effort: pipe-max-size may refuse
  int size = fcntl(d.pipe[1], F_GETPIPE_SZ);
  d.pipe_bytes = size > 0 ? size_t(size) : 65536;
  pipes_created_.fetch_add(1);
  return true;
}

void SplicePump::GivePipe(Direction& d) {
  if (d.pipe[0] < 0) return;
  // only an empty pipe is clean for the next call
  if (d.in_pipe == 0 && pipes_.size() / 3 < options_.pipe_pool) {
    pipes_.push_back(d.pipe[0]);
    pipes_.push_back(d.pipe[1]);
    pipes_.push_back(int(d.pipe_bytes));
    pipes_pooled_.fetch_add(1);
    d.pipe[0] = d.pipe[1] = -1;
  } else {
    CloseFd(d.pipe[0]);
    CloseFd(d.pipe[1]);
  }
}

void SplicePump::Pump(Call* c) {
  for (int round = 0; round < kRoundsPerTurn; round++) {
    bool progress = false;
    for (int d = 0; d < 2; d++) {
      int err = PumpDirection(c, d, &progress);
      if (err) return Finish(c, SpliceEnd::kError, err);
    }
    // A side is done for good when it sent its FIN and has been sent ours.
    for (int s = 0; s < 2; s++) {
      if (c->fd[s] >= 0 && c->dir[s].eof && c->dir[1 - s].shut) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
        CloseFd(c->fd[s]);
        if (c->fd[1 - s] >= 0) {
          // the other has linger_ms to take what is left of its direction
          c->linger_until_ms = now_ms_ + options_.linger_ms;
          next_sweep_ms_ = std::min(next_sweep_ms_, c->linger_until_ms);
        }
      }
    }
    if (c->fd[0] < 0 && c->fd[1] < 0) return Finish(c, SpliceEnd::kClosed, 0);
    if (!progress) {
      // Waiting: an empty pipe goes back to the pool, so pipes (and the
      // pipe pages the kernel accounts to the user, fs.pipe-user-pages-soft)
      // follow the calls with octets in flight, not the calls open.
      for (Direction& d : c->dir)
        if (d.in_pipe == 0) GivePipe(d);
      return;
    }
  }
  // still ready after its turn: again after the next epoll_wait, so other calls run in between
  c->queued = true;
  again_.push_back(c->id);
}

int SplicePump::PumpDirection(Call* c, int d, bool* progress) {
  Direction& x = c->dir[d];
  const int src = d, dst = 1 - d;
  if (x.shut) return 0;
  // 1. the handed-over octets go first
  while (x.pending_off < x.pending.size()) {
    if (!c->writable[dst]) return 0;
    ssize_t n = send(c->fd[dst], x.pending.data() + x.pending_off, x.pending.size() - x.pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      x.pending_off += size_t(n);
      x.bytes += uint64_t(n);
      c->last_active_ms = now_ms_;
      *progress = true;
    } else if (errno == EAGAIN) {
      c->writable[dst] = false;
      return 0;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  if (!x.pending.empty()) std::string().swap(x.pending);
  // 2. the pipe into the destination
  if (x.in_pipe > 0 && c->writable[dst]) {
    ssize_t n = splice(x.pipe[0], nullptr, c->fd[dst], nullptr, x.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      x.in_pipe -= size_t(n);
      x.bytes += uint64_t(n);
      c->last_active_ms = now_ms_;
      *progress = true;
    } else if (n < 0 && errno == EAGAIN) {
      c->writable[dst] = false;
    } else if (n < 0 && errno != EINTR) {
      return errno;
    }
  }
  // 3. the source's FIN, once all it sent before is out
  if (x.eof) {
    if (x.in_pipe == 0) {
      if (shutdown(c->fd[dst], SHUT_WR) < 0 && errno != ENOTCONN) return errno;
      x.shut = true;
      GivePipe(x);
      *progress = true;
    }
    return 0;
  }
  // 4. the source into the pipe, while it has room (backpressure: a full
  // pipe is not read into, so the source's kernel buffers fill and its
  // sender's window closes)
  if (c->readable[src] && (x.pipe[0] < 0 || x.in_pipe < x.pipe_bytes)) {
    if (x.pipe[0] < 0 && !TakePipe(x)) return errno;
    ssize_t n = splice(c->fd[src], nullptr, x.pipe[1], nullptr, x.pipe_bytes - x.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      x.in_pipe += size_t(n);
      c->last_active_ms = now_ms_;
      *progress = true;
    } else if (n == 0) {
      x.eof = true;
      *progress = true;
    } else if (errno == EAGAIN) {
      // Nothing to read, or a pipe full by its slots with fewer octets than
      // its capacity: only an empty pipe tells them apart. Not empty, it is
      // drained first and the read tried again.
      if (x.in_pipe == 0) c->readable[src] = false;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

void SplicePump::Finish(Call* c, SpliceEnd why, int error) {
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] < 0) continue;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
    CloseFd(c->fd[s]);
  }
  for (Direction& d : c->dir) GivePipe(d);
  Complete({c->id, c->dir[0].bytes, c->dir[1].bytes, why, error});
  calls_.erase(c->id);
  delete c;
}

void SplicePump::Sweep(uint64_t now) {
  std::vector<std::pair<Call*, SpliceEnd>> ending;
  uint64_t next = kNever;
  for (auto& [id, c] : calls_) {
    if (c->linger_until_ms && now >= c->linger_until_ms) {
      ending.emplace_back(c, SpliceEnd::kClosed);
      continue;
    }
    if (c->idle_ms && now - c->last_active_ms >= c->idle_ms) {
      ending.emplace_back(c, SpliceEnd::kIdleTimeout);
      continue;
    }
    if (c->linger_until_ms) next = std::min(next, c->linger_until_ms);
    if (c->idle_ms) next = std::min(next, c->last_active_ms + c->idle_ms);
  }
  for (auto& [c, why] : ending) Finish(c, why, 0);
  // activity only moves a deadline later: a sweep may come early, never late;
  // at most one every 5 ms
  next_sweep_ms_ = next == kNever ? kNever : std::max(next, now + 5);
}

}  // namespace affinityd
