// The latency floor for bench/responder.ts: a UDP echo server with the same
// batched I/O as the responder (recvmmsg/sendmmsg after a blocking wait) and
// no work at all. query_loadgen --raw measures it with the same client.
// Usage: udp_echo PORT [GROUP]: with a group, it joins it on 127.0.0.1 and
// echoes what the group brings (the responders' path: a multicast QUERY in,
// a unicast REPLY out); without, it listens on 127.0.0.1:PORT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 39998;
  const char* group = argc > 2 ? argv[2] : nullptr;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = group ? inet_addr(group) : htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) { perror("bind"); return 2; }
  if (group) {
    ip_mreq m{};
    m.imr_multiaddr.s_addr = inet_addr(group);
    m.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) < 0) { perror("IP_ADD_MEMBERSHIP"); return 2; }
    in_addr lo{};
    lo.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  constexpr int kBatch = 64;
  static char bufs[kBatch][2048];
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    pollfd in{0, POLLIN, 0};
    pollfd fds[2] = {p, in};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) {  // stdin closed: stop
      char c;
      if (read(0, &c, 1) <= 0) return 0;
    }
    for (int i = 0; i < kBatch; i++) {
      iov[i] = {bufs[i], sizeof bufs[i]};
      std::memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) continue;
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    sendmmsg(fd, msgs, unsigned(n), 0);
  }
}
