// The cluster's sockets. A node has two:
// - the group socket, bound to the multicast group and port and joined on one
//   interface: it receives QUERYs and UPDATEs multicast to the cluster;
// - the unicast socket, bound to the node's own address: every frame the node
//   sends leaves from it (multicast too: IP_MULTICAST_IF, TTL and loop are set
//   on it), so REPLYs and direct queries come back to it, and two nodes on one
//   host never receive each other's unicast;
// - the reply socket, bound to the same address and port (SO_REUSEPORT): a
//   classic BPF program on the pair has the kernel put every datagram whose
//   frame type octet says REPLY there, and everything else on the unicast
//   socket. The JS thread reads it itself (a REPLY is only ever for JS), so
//   an answer reaches the waiting call without waking the I/O thread first.
//   Peers see one address, as before. Before the pair is bound, a plain
//   socket binds the port alone: a port another process holds fails there
//   (EADDRINUSE), and a second node given the same port cannot join the pair.
//   Without the reply socket (refused by the kernel, or reply_socket off)
//   REPLYs come in on the unicast socket as before.
// Failures carry errno, the syscall and the address, like zeromq.js's errors.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

namespace affinityd {

struct SocketOptions {
  std::string group;          // IPv4 or IPv6 multicast address
  uint16_t port = 0;          // group port
  std::string interface_;     // IPv4: the interface's address; IPv6: its name
  std::string local_address;  // unicast bind address; default IPv4 interface_, IPv6 "::"
  uint16_t unicast_port = 0;  // 0: ephemeral
  int ttl = 1;                // multicast TTL / hop limit
  bool loopback = true;       // deliver own multicast to sockets on this host
  int receive_buffer = 4 << 20;
  bool reply_socket = false;  // a reply socket beside the unicast one (best effort; nodes: cluster.replySocket)
};

struct SocketError {
  int code = 0;              // errno, or EINVAL for a bad option
  std::string syscall;       // "bind", "setsockopt(IP_ADD_MEMBERSHIP)", "inet_pton"...
  std::string address;       // what it was about
};

class MulticastSocket {
 public:
  static std::unique_ptr<MulticastSocket> Open(const SocketOptions& o, SocketError* err);
  ~MulticastSocket();

  // Closes every socket now (a node that has stopped: its port is free at
  // once, not when the object is collected). Idempotent.
  void Close();
  bool Join(SocketError* err);
  bool Leave(SocketError* err);
  // Has the kernel drop, on the group socket, the multicast loopback copies
  // of this node's own frames (this sender node id and boot epoch, from this
  // unicast socket's port and address) before they wake the reader: a frame
  // header starts with magic, version, type, key id (8 octets), then the
  // sender node and the boot epoch, big-endian (docs/protocol.md, section 3).
  // A frame with this id from another boot or another socket still arrives
  // (a duplicate node id). Best effort: false if the kernel refuses the filter.
  bool DropOwnFrames(uint32_t node_id, uint32_t boot_epoch);
  int group_fd() const { return group_fd_; }
  int unicast_fd() const { return unicast_fd_; }
  int reply_fd() const { return reply_fd_; }  // -1: REPLYs arrive on the unicast socket
  int family() const { return family_; }
  const sockaddr_storage& group_address() const { return group_; }
  socklen_t group_address_len() const { return group_len_; }
  const sockaddr_storage& local_address() const { return local_; }
  bool joined() const { return joined_; }

 private:
  MulticastSocket() = default;
  bool Membership(bool join, SocketError* err);
  bool OpenUnicast(const SocketOptions& o, const std::string& local, const sockaddr_storage& la, socklen_t la_len,
                   SocketError* err);
  void OpenReplySocket(const SocketOptions& o, sockaddr_storage la, socklen_t la_len);
  int family_ = 0;
  int group_fd_ = -1, unicast_fd_ = -1, reply_fd_ = -1;
  unsigned if_index_ = 0;
  in_addr if_addr_{};
  sockaddr_storage group_{};
  socklen_t group_len_ = 0;
  sockaddr_storage local_{};
  bool joined_ = false;
};

std::string FormatAddress(const sockaddr_storage& a, uint16_t* port);
// Same family, port and address; an unspecified address in `mine` (a socket
// bound to any address) matches any address of its family.
bool SameAddress(const sockaddr_storage& from, const sockaddr_storage& mine);
bool ParseAddress(const std::string& text, uint16_t port, sockaddr_storage* out, socklen_t* len);

}  // namespace affinityd
