// The splice pump (native/splice_pump.h) on its own, no Node: built with
// ThreadSanitizer by CMake and run by test/native/splice-pump.test.ts.
// 16 echo calls at once over loopback TCP (1 MiB each way, checked octet for
// octet, with handed-over octets first), a call closed by Close(), one ended
// by its idle time-out, one open when the pump stops; then no fd of the
// pump's or the calls' is left. Exits 0 and prints "ok", or names what failed.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "splice_pump.h"

using namespace affinityd;

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  std::exit(1);
}

int CountFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;  // the directory's own
}

// A connected pair over loopback: *a is the connecting side, *b the accepted one.
void TcpPair(int listener, uint16_t port, int* a, int* b) {
  *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(*a, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) Fail("connect");
  *b = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (*b < 0) Fail("accept");
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed | 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = char(x);
  }
  return s;
}

void WriteAll(int fd, const std::string& s) {
  for (size_t off = 0; off < s.size();) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) Fail("write");
    off += size_t(n);
  }
}

std::string ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) Fail("read");
    if (n == 0) return out;
    out.append(buf, size_t(n));
  }
}

}  // namespace

int main() {
  const int fds_before = CountFds();
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || listen(listener, 64) < 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    Fail("listen");
  const uint16_t port = ntohs(sa.sin_port);

  std::mutex mu;
  std::condition_variable cv;
  bool notified = false;
  std::string err;
  auto pump = SplicePump::Start({}, [&] {
    std::lock_guard<std::mutex> g(mu);
    notified = true;
    cv.notify_one();
  }, &err);
  if (!pump) Fail("start: " + err);
  std::map<uint64_t, SpliceCompletion> done;
  auto wait_for = [&](size_t n) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (done.size() < n) {
      {
        std::unique_lock<std::mutex> l(mu);
        if (!cv.wait_until(l, until, [&] { return notified; })) Fail("completions did not come");
        notified = false;
      }
      while (pump->Drain(4, [&](const SpliceCompletion& c) { done[c.id] = c; })) {
      }
    }
  };
  // A call as a front end hands it over: the pump dups the front's fds, the front closes its own.
  struct Ends {
    int client, endpoint;
    uint64_t id;
  };
  auto call = [&](const std::string& to_endpoint, uint32_t idle_ms) {
    int client, front_client, front_endpoint, endpoint;
    TcpPair(listener, port, &client, &front_client);
    TcpPair(listener, port, &front_endpoint, &endpoint);
    for (int fd : {front_client, front_endpoint}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int e = 0;
    uint64_t id = pump->Add(front_client, front_endpoint, reinterpret_cast<const uint8_t*>(to_endpoint.data()),
                            to_endpoint.size(), nullptr, 0, idle_ms, &e);
    if (!id) Fail("add");
    close(front_client);
    close(front_endpoint);
    return Ends{client, endpoint, id};
  };

  // 16 echo calls at once
  const int kCalls = 16;
  const size_t kOctets = 1 << 20;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  std::vector<Ends> calls;
  for (int i = 0; i < kCalls; i++) calls.push_back(call("hello ", 0));
  for (int i = 0; i < kCalls; i++) {
    Ends c = calls[size_t(i)];
    threads.emplace_back([c] {  // the endpoint: echoes until EOF, then ends
      char buf[65536];
      for (;;) {
        ssize_t n = read(c.endpoint, buf, sizeof buf);
        if (n <= 0) break;
        WriteAll(c.endpoint, std::string(buf, size_t(n)));
      }
      shutdown(c.endpoint, SHUT_WR);
    });
    threads.emplace_back([c, i, &bad, kOctets] {  // the client: sends, ends, reads the echo
      std::string data = Pattern(kOctets, uint32_t(i + 1));
      std::thread w([&] {
        WriteAll(c.client, data);
        shutdown(c.client, SHUT_WR);
      });
      std::string got = ReadToEof(c.client);
      w.join();
      if (got != "hello " + data) bad++;
    });
  }
  for (auto& t : threads) t.join();
  if (bad) Fail(std::to_string(bad.load()) + " calls came back altered");
  wait_for(size_t(kCalls));
  for (const Ends& c : calls) {
    const SpliceCompletion& d = done.at(c.id);
    if (d.reason != SpliceEnd::kClosed || d.bytes_from_client != kOctets + 6 || d.bytes_to_client != kOctets + 6)
      Fail("call " + std::to_string(c.id) + ": reason " + std::to_string(int(d.reason)) + ", octets " +
           std::to_string(d.bytes_from_client) + "/" + std::to_string(d.bytes_to_client));
    close(c.client);
    close(c.endpoint);
  }

  // closed when asked; ended by its idle time-out
  Ends asked = call("", 0);
  Ends idle = call("", 50);
  pump->Close(asked.id);
  wait_for(size_t(kCalls) + 2);
  if (done.at(asked.id).reason != SpliceEnd::kClosed) Fail("the closed call's reason");
  if (done.at(idle.id).reason != SpliceEnd::kIdleTimeout) Fail("the idle call's reason");
  for (int fd : {asked.client, asked.endpoint, idle.client, idle.endpoint})
    if (!ReadToEof(fd).empty()) Fail("octets from a closed call");

  // open when the pump stops
  Ends open = call("", 0);
  pump->Stop();
  if (!ReadToEof(open.client).empty() || !ReadToEof(open.endpoint).empty()) Fail("the open call at Stop");
  for (int fd : {asked.client, asked.endpoint, idle.client, idle.endpoint, open.client, open.endpoint}) close(fd);
  SplicePumpStats st = pump->stats();
  if (st.calls_added != kCalls + 3) Fail("calls added");
  pump.reset();
  close(listener);
  if (CountFds() != fds_before) Fail("fds left: " + std::to_string(CountFds() - fds_before));
  std::printf("ok: %d echo calls of %zu octets each way, a close, an idle time-out, a stop with a call open\n", kCalls, kOctets);
  return 0;
}
