#include "multicast_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "wire.h"

namespace affinityd {

namespace {
bool Fail(SocketError* err, int code, const char* syscall, const std::string& address) {
  if (err) *err = SocketError{code, syscall, address};
  return false;
}
}  // namespace

std::string FormatAddress(const sockaddr_storage& a, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN + 16] = {};
  if (a.ss_family == AF_INET) {
    auto* s = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    if (port) *port = ntohs(s->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    if (port) *port = ntohs(s->sin6_port);
    if (s->sin6_scope_id) {
      char name[IF_NAMESIZE] = {};
      std::string out = buf;
      out += "%";
      out += if_indextoname(s->sin6_scope_id, name) ? name : std::to_string(s->sin6_scope_id);
      return out;
    }
  }
  return buf;
}

bool ParseAddress(const std::string& text, uint16_t port, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  std::string host = text;
  size_t pct = host.find('%');
  if (pct != std::string::npos) {
    v6->sin6_scope_id = if_nametoindex(host.substr(pct + 1).c_str());
    if (!v6->sin6_scope_id) return false;
    host = host.substr(0, pct);
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) return false;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  *len = sizeof(sockaddr_in6);
  return true;
}

std::unique_ptr<MulticastSocket> MulticastSocket::Open(const SocketOptions& o, SocketError* err) {
  std::unique_ptr<MulticastSocket> s(new MulticastSocket());
  if (!ParseAddress(o.group, o.port, &s->group_, &s->group_len_)) {
    Fail(err, EINVAL, "inet_pton", o.group);
    return nullptr;
  }
  s->family_ = s->group_.ss_family;
  const bool v6 = s->family_ == AF_INET6;
  const bool is_multicast =
      v6 ? IN6_IS_ADDR_MULTICAST(&reinterpret_cast<sockaddr_in6*>(&s->group_)->sin6_addr)
         : IN_MULTICAST(ntohl(reinterpret_cast<sockaddr_in*>(&s->group_)->sin_addr.s_addr));
  if (!is_multicast) {
    Fail(err, EINVAL, "group is not a multicast address", o.group);
    return nullptr;
  }
  std::string local = o.local_address;
  if (v6) {
    s->if_index_ = if_nametoindex(o.interface_.c_str());
    if (!s->if_index_) {
      Fail(err, ENODEV, "if_nametoindex", o.interface_);
      return nullptr;
    }
    auto* g = reinterpret_cast<sockaddr_in6*>(&s->group_);
    if (IN6_IS_ADDR_MC_LINKLOCAL(&g->sin6_addr)) g->sin6_scope_id = s->if_index_;
    if (local.empty()) local = "::";
  } else {
    if (inet_pton(AF_INET, o.interface_.c_str(), &s->if_addr_) != 1) {
      Fail(err, EINVAL, "inet_pton (IPv4 interface address)", o.interface_);
      return nullptr;
    }
    if (local.empty()) local = o.interface_;
  }

  const int one = 1;
  // Group socket: receive only.
  s->group_fd_ = socket(s->family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->group_fd_ < 0) { Fail(err, errno, "socket", o.group); return nullptr; }
  if (setsockopt(s->group_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    Fail(err, errno, "setsockopt(SO_REUSEADDR)", o.group);
    return nullptr;
  }
  setsockopt(s->group_fd_, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer, sizeof o.receive_buffer);
  if (v6) {
    setsockopt(s->group_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  } else {
    const int zero = 0;  // only the group we joined on this socket, not every group on the host
    setsockopt(s->group_fd_, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  }
  // Binding to the group address (not the wildcard) keeps unicast and other
  // groups on the same port away from this socket.
  if (bind(s->group_fd_, reinterpret_cast<sockaddr*>(&s->group_), s->group_len_) < 0) {
    Fail(err, errno, "bind", o.group + ":" + std::to_string(o.port));
    return nullptr;
  }

  // Unicast socket: everything the node sends, and the replies to it.
  sockaddr_storage la;
  socklen_t la_len;
  if (!ParseAddress(local, o.unicast_port, &la, &la_len) || la.ss_family != s->family_) {
    Fail(err, EINVAL, "inet_pton (local address)", local);
    return nullptr;
  }
  if (!s->OpenUnicast(o, local, la, la_len, err)) return nullptr;
  socklen_t ll = sizeof s->local_;
  getsockname(s->unicast_fd_, reinterpret_cast<sockaddr*>(&s->local_), &ll);
  const int ttl = o.ttl, loop = o.loopback ? 1 : 0;
  if (v6) {
    if (setsockopt(s->unicast_fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, &s->if_index_, sizeof s->if_index_) < 0)
      { Fail(err, errno, "setsockopt(IPV6_MULTICAST_IF)", o.interface_); return nullptr; }
    if (setsockopt(s->unicast_fd_, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) < 0)
      { Fail(err, errno, "setsockopt(IPV6_MULTICAST_HOPS)", std::to_string(ttl)); return nullptr; }
    if (setsockopt(s->unicast_fd_, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop) < 0)
      { Fail(err, errno, "setsockopt(IPV6_MULTICAST_LOOP)", o.group); return nullptr; }
  } else {
    if (setsockopt(s->unicast_fd_, IPPROTO_IP, IP_MULTICAST_IF, &s->if_addr_, sizeof s->if_addr_) < 0)
      { Fail(err, errno, "setsockopt(IP_MULTICAST_IF)", o.interface_); return nullptr; }
    const unsigned char ttl8 = static_cast<unsigned char>(ttl), loop8 = static_cast<unsigned char>(loop);
    if (setsockopt(s->unicast_fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl8, sizeof ttl8) < 0)
      { Fail(err, errno, "setsockopt(IP_MULTICAST_TTL)", std::to_string(ttl)); return nullptr; }
    if (setsockopt(s->unicast_fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop8, sizeof loop8) < 0)
      { Fail(err, errno, "setsockopt(IP_MULTICAST_LOOP)", o.group); return nullptr; }
  }
  if (!s->Join(err)) return nullptr;
  return s;
}

bool MulticastSocket::OpenUnicast(const SocketOptions& o, const std::string& local, const sockaddr_storage& la,
                                  socklen_t la_len, SocketError* err) {
  const int one = 1;
  const bool v6 = family_ == AF_INET6;
  auto open = [&](bool reuse) {
    int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer, sizeof o.receive_buffer);
    if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    return fd;
  };
  if (!o.reply_socket) {
    unicast_fd_ = open(false);
    if (unicast_fd_ < 0) return Fail(err, errno, "socket", local);
    if (bind(unicast_fd_, reinterpret_cast<const sockaddr*>(&la), la_len) < 0)
      return Fail(err, errno, "bind", local + ":" + std::to_string(o.unicast_port));
    return true;
  }
  // The port alone first, without SO_REUSEPORT: taken by anyone, it fails
  // here as it always did; free (or ephemeral), it is the pair's port.
  int probe = open(false);
  if (probe < 0) return Fail(err, errno, "socket", local);
  if (bind(probe, reinterpret_cast<const sockaddr*>(&la), la_len) < 0) {
    Fail(err, errno, "bind", local + ":" + std::to_string(o.unicast_port));
    close(probe);
    return false;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  getsockname(probe, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  close(probe);
  unicast_fd_ = open(true);
  if (unicast_fd_ < 0) return Fail(err, errno, "socket", local);
  if (bind(unicast_fd_, reinterpret_cast<const sockaddr*>(&bound), bound_len) < 0)
    return Fail(err, errno, "bind", local + ":" + std::to_string(o.unicast_port));
  OpenReplySocket(o, bound, bound_len);
  return true;
}

void MulticastSocket::OpenReplySocket(const SocketOptions& o, sockaddr_storage la, socklen_t la_len) {
  const int one = 1;
  int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer, sizeof o.receive_buffer);
  if (family_ == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&la), la_len) < 0) {
    close(fd);
    return;
  }
  // The pair's steering, run by the kernel on each datagram's UDP payload
  // (the frame): index 1 (this socket, bound second) for a frame type octet
  // of REPLY, index 0 (the unicast socket) for anything else, shorter
  // datagrams included.
  sock_filter steer[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kOffType + 1, 0, 3),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kOffType),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(MessageType::kReply), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  sock_fprog prog{uint16_t(sizeof steer / sizeof steer[0]), steer};
  if (setsockopt(unicast_fd_, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) {
    // without steering the kernel would spread every frame over both by
    // hash: the reply socket goes, and the unicast socket takes everything
    close(fd);
    return;
  }
  reply_fd_ = fd;
}

bool MulticastSocket::Membership(bool join, SocketError* err) {
  if (family_ == AF_INET6) {
    ipv6_mreq m{};
    m.ipv6mr_multiaddr = reinterpret_cast<sockaddr_in6*>(&group_)->sin6_addr;
    m.ipv6mr_interface = if_index_;
    int opt = join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;
    if (setsockopt(group_fd_, IPPROTO_IPV6, opt, &m, sizeof m) < 0)
      return Fail(err, errno, join ? "setsockopt(IPV6_JOIN_GROUP)" : "setsockopt(IPV6_LEAVE_GROUP)",
                  FormatAddress(group_, nullptr));
  } else {
    ip_mreq m{};
    m.imr_multiaddr = reinterpret_cast<sockaddr_in*>(&group_)->sin_addr;
    m.imr_interface = if_addr_;
    int opt = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
    if (setsockopt(group_fd_, IPPROTO_IP, opt, &m, sizeof m) < 0)
      return Fail(err, errno, join ? "setsockopt(IP_ADD_MEMBERSHIP)" : "setsockopt(IP_DROP_MEMBERSHIP)",
                  FormatAddress(group_, nullptr));
  }
  joined_ = join;
  return true;
}

bool MulticastSocket::DropOwnFrames(uint32_t node_id, uint32_t boot_epoch) {
  // Classic BPF on a UDP socket sees the datagram from its UDP header
  // (offset 0); SKF_NET_OFF reaches the IP header. Drop (return 0) only when
  // every test matches; anything else is accepted whole.
  constexpr uint32_t kUdp = 8;  // UDP header octets before the frame
  std::vector<sock_filter> p;
  std::vector<size_t> to_accept;  // jumps to patch: "no match: accept"
  auto test = [&](sock_filter load, uint32_t value) {
    p.push_back(load);
    to_accept.push_back(p.size());
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 0));
  };
  // a load past the end would drop the datagram: shorter ones are accepted
  // first (and counted as truncated by the reader)
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0));
  to_accept.push_back(p.size());
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kUdp + 16, 0, 0));
  test(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kUdp + 8), node_id);     // sender node
  test(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kUdp + 12), boot_epoch); // boot epoch
  if (family_ == AF_INET) {
    auto l = reinterpret_cast<const sockaddr_in*>(&local_);
    test(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), ntohs(l->sin_port));  // UDP source port
    if (l->sin_addr.s_addr != INADDR_ANY)
      test(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, uint32_t(SKF_NET_OFF + 12)), ntohl(l->sin_addr.s_addr));  // IPv4 source
  } else {
    auto l = reinterpret_cast<const sockaddr_in6*>(&local_);
    test(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), ntohs(l->sin6_port));
    if (!IN6_IS_ADDR_UNSPECIFIED(&l->sin6_addr)) {
      for (int w = 0; w < 4; w++) {  // IPv6 source, four words
        uint32_t word;
        std::memcpy(&word, l->sin6_addr.s6_addr + 4 * w, 4);
        test(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, uint32_t(SKF_NET_OFF + 8 + 4 * w)), ntohl(word));
      }
    }
  }
  const size_t drop = p.size();
  p.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
  const size_t accept = p.size();
  p.push_back(BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFFu));
  (void)drop;
  for (size_t j : to_accept) p[j].jf = uint8_t(accept - j - 1);  // mismatch: accept; match: next test (or drop)
  sock_fprog prog{uint16_t(p.size()), p.data()};
  return setsockopt(group_fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}

bool MulticastSocket::Join(SocketError* err) { return joined_ || Membership(true, err); }
bool MulticastSocket::Leave(SocketError* err) { return !joined_ || Membership(false, err); }

MulticastSocket::~MulticastSocket() { Close(); }

void MulticastSocket::Close() {
  for (int* fd : {&group_fd_, &unicast_fd_, &reply_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

bool SameAddress(const sockaddr_storage& from, const sockaddr_storage& mine) {
  if (from.ss_family != mine.ss_family) return false;
  if (from.ss_family == AF_INET) {
    auto a = reinterpret_cast<const sockaddr_in*>(&from);
    auto b = reinterpret_cast<const sockaddr_in*>(&mine);
    return a->sin_port == b->sin_port && (b->sin_addr.s_addr == INADDR_ANY || a->sin_addr.s_addr == b->sin_addr.s_addr);
  }
  if (from.ss_family == AF_INET6) {
    auto a = reinterpret_cast<const sockaddr_in6*>(&from);
    auto b = reinterpret_cast<const sockaddr_in6*>(&mine);
    return a->sin6_port == b->sin6_port &&
           (IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) || std::memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0);
  }
  return false;
}

}  // namespace affinityd
