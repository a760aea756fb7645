// Native QUERY load generator for the responder benchmark (bench/responder.ts).
// Closed loop: keeps --inflight queries outstanding, each a signed frame with
// a fresh sequence number, for --seconds; reads REPLYs on its unicast socket,
// checks their query id (and with --verify their tag too), and prints one
// JSON line with the rate and the round-trip percentiles.
//
// Keys are "2:10.x.y.z/subscriber-<i>@bench.example" canonical keys for i in [0, --keys),
// the same ones bench/responder.ts stores in the responder's table.
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../authenticator.h"
#include "../frame.h"
#include "../messages.h"
#include "../multicast_socket.h"

using namespace affinityd;

namespace {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

std::string Arg(int argc, char** argv, const char* name, const char* dflt) {
  for (int i = 1; i + 1 < argc; i++)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return dflt;
}
bool Flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; i++)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

std::string Hex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  SocketOptions so;
  so.group = Arg(argc, argv, "--group", "239.255.0.77");
  so.port = uint16_t(std::atoi(Arg(argc, argv, "--port", "7777").c_str()));
  so.interface_ = Arg(argc, argv, "--interface", "127.0.0.1");
  const size_t keys = std::strtoul(Arg(argc, argv, "--keys", "1000").c_str(), nullptr, 10);
  const size_t inflight = std::strtoul(Arg(argc, argv, "--inflight", "1").c_str(), nullptr, 10);
  const double seconds = std::atof(Arg(argc, argv, "--seconds", "3").c_str());
  const double warmup = std::atof(Arg(argc, argv, "--warmup", "0.5").c_str());
  const bool verify = Flag(argc, argv, "--verify");
  // --raw: the target echoes; an echoed QUERY counts as the answer (the
  // latency floor of the same client against a server that does nothing).
  const bool raw = Flag(argc, argv, "--raw");
  const std::string target = Arg(argc, argv, "--target", "");  // unicast ADDRESS:PORT instead of the group
  auto ring = std::make_shared<Keyring>();
  ring->keys.push_back({uint16_t(std::atoi(Arg(argc, argv, "--key-id", "1").c_str())),
                        Hex(Arg(argc, argv, "--secret", "4242424242424242424242424242424242424242424242424242424242424242"))});
  ring->send_key_id = ring->keys[0].id;
  Authenticator auth(ring);
  if (!auth.ok()) { std::fprintf(stderr, "auth: %s\n", auth.error().c_str()); return 2; }

  SocketError err;
  auto sock = MulticastSocket::Open(so, &err);
  if (!sock) {
    std::fprintf(stderr, "socket: %s errno %d (%s)\n", err.syscall.c_str(), err.code, err.address.c_str());
    return 2;
  }
  // A client only sends to the group and reads its unicast socket: leave the
  // group so the kernel does not copy every QUERY to a socket nobody reads.
  if (!sock->Leave(&err)) {
    std::fprintf(stderr, "leave: %s errno %d\n", err.syscall.c_str(), err.code);
    return 2;
  }
  sockaddr_storage dest = sock->group_address();
  socklen_t dest_len = sock->group_address_len();
  if (!target.empty()) {
    size_t colon = target.rfind(':');
    if (!ParseAddress(target.substr(0, colon), uint16_t(std::atoi(target.substr(colon + 1).c_str())), &dest, &dest_len)) {
      std::fprintf(stderr, "bad --target %s\n", target.c_str());
      return 2;
    }
  }
  const int fd = sock->unicast_fd();

  // Canonical keys as bench/responder.ts stores them.
  std::vector<std::vector<uint8_t>> key_bytes(keys);
  for (size_t i = 0; i < keys; i++) {
    std::string user = "subscriber-" + std::to_string(i) + "@bench.example";
    auto& k = key_bytes[i];
    k = {2, 4, uint8_t(10), uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)};
    k.insert(k.end(), user.begin(), user.end());
  }

  const uint32_t node = 0xBE000000u | (uint32_t(getpid()) & 0xFFFFFF);
  const uint32_t epoch = uint32_t(WallMs() / 1000);
  uint64_t seq = 1;
  uint32_t next_query = 1;
  struct Slot { uint32_t query_id = 0; uint64_t sent_ns = 0; };
  std::vector<Slot> slots(inflight);
  std::vector<uint32_t> rtt_ns;
  rtt_ns.reserve(size_t(seconds * 400000) + 1024);
  uint64_t sent = 0, answered = 0, lost = 0, bad_replies = 0, send_errors = 0;

  auto send_query = [&](size_t slot) {
    uint8_t body[256], frame[kMaxFrameSize];
    const auto& k = key_bytes[next_query % keys];
    static WireQuery q;  // one client per QUERY, every directory answers
    q.key_count = 1;
    q.answer_rank = 0;
    ClientKeyFromCanonical(k.data(), k.size(), &q.keys[0]);
    q.query_id = next_query++;
    size_t bl = EncodeQuery(q, body, sizeof body);
    FrameHeader h;
    h.type = uint8_t(MessageType::kQuery);
    h.key_id = ring->send_key_id;
    h.sender_node = node;
    h.boot_epoch = epoch;
    h.sequence = seq++;
    h.timestamp_ms = WallMs();
    size_t fl = BuildFrame(h, body, bl, auth, frame, sizeof frame);
    slots[slot] = {q.query_id, MonoNs()};
    if (sendto(fd, frame, fl, 0, reinterpret_cast<sockaddr*>(&dest), dest_len) < 0) send_errors++;
    sent++;
  };

  const uint64_t t0 = MonoNs();
  const uint64_t measure_from = t0 + uint64_t(warmup * 1e9);
  const uint64_t deadline = measure_from + uint64_t(seconds * 1e9);
  for (size_t s = 0; s < inflight; s++) send_query(s);
  uint64_t measured_answers = 0;
  constexpr size_t kBatch = 64;
  static uint8_t bufs[kBatch][2048];
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  uint64_t last_scan = t0;
  while (MonoNs() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5) <= 0) {
      // fall through to the loss scan
    } else {
      for (size_t i = 0; i < kBatch; i++) {
        iov[i] = {bufs[i], sizeof bufs[i]};
        std::memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      const uint64_t now = MonoNs();
      for (int i = 0; i < r; i++) {
        FrameHeader h;
        const uint8_t* d = bufs[i];
        size_t n = msgs[i].msg_len;
        Verdict v = CheckStructure(d, n, &h);
        if (v == Verdict::kAccepted && verify &&
            auth.Verify(h.key_id, d, n - kTagSize, d + n - kTagSize) != Authenticator::Result::kOk)
          v = Verdict::kBadTag;
        static WireEntries rep;
        static WireQuery echoed;
        uint32_t query_id = 0;
        bool ok = v == Verdict::kAccepted;
        if (ok && raw) {
          ok = h.type == uint8_t(MessageType::kQuery) && DecodeQuery(d + kHeaderSize, h.body_length, &echoed);
          query_id = echoed.query_id;
        } else if (ok) {
          ok = h.type == uint8_t(MessageType::kReply) && DecodeReply(d + kHeaderSize, h.body_length, &rep) && rep.count == 1;
          query_id = rep.id;
        }
        if (!ok) {
          bad_replies++;
          continue;
        }
        size_t slot = inflight;
        for (size_t s = 0; s < inflight; s++)
          if (slots[s].query_id == query_id) { slot = s; break; }
        if (slot == inflight) continue;  // a reply to a query already written off
        if (now >= measure_from) {
          rtt_ns.push_back(uint32_t(std::min<uint64_t>(now - slots[slot].sent_ns, 0xFFFFFFFFu)));
          measured_answers++;
        }
        answered++;
        send_query(slot);
      }
    }
    const uint64_t now = MonoNs();
    if (now - last_scan > 10000000) {  // every 10 ms: queries unanswered for 200 ms are lost
      last_scan = now;
      for (size_t s = 0; s < inflight; s++)
        if (now - slots[s].sent_ns > 200000000) { lost++; send_query(s); }
    }
  }
  std::sort(rtt_ns.begin(), rtt_ns.end());
  auto pct = [&](double p) -> double {
    if (rtt_ns.empty()) return 0;
    return rtt_ns[std::min(rtt_ns.size() - 1, size_t(p * rtt_ns.size()))] / 1000.0;
  };
  std::printf(
      "{\"inflight\":%zu,\"seconds\":%.3f,\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"badReplies\":%llu,"
      "\"sendErrors\":%llu,\"repliesPerSecond\":%.0f,\"p50us\":%.1f,\"p90us\":%.1f,\"p99us\":%.1f,"
      "\"p999us\":%.1f,\"maxus\":%.1f,\"verified\":%s}\n",
      inflight, seconds, (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)lost,
      (unsigned long long)bad_replies, (unsigned long long)send_errors, measured_answers / seconds, pct(0.5),
      pct(0.9), pct(0.99), pct(0.999), rtt_ns.empty() ? 0.0 : rtt_ns.back() / 1000.0, verify ? "true" : "false");
  return answered > 0 ? 0 : 1;
}
