// The latency floor for bench/responder.ts: a UDP echo server with the same
// batched I/O as the responder (recvmmsg/sendmmsg after a blocking wait) and
// no work at all. query_loadgen --raw measures it with the same client.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 39998;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) { perror("bind"); return 2; }
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
