// The systemd notification protocol (sd_notify(3)): one datagram of
// newline-separated KEY=VALUE assignments (READY=1, RELOADING=1, STOPPING=1,
// WATCHDOG=1, STATUS=..., MONOTONIC_USEC=...) to the AF_UNIX socket named in
// $NOTIFY_SOCKET; a leading '@' names an abstract socket. Written here rather
// than linked from libsystemd: the protocol is small and stable, and an
// appliance image need not carry the library to run the node.
#pragma once
#include <string>

namespace affinityd {

// Sends state to the socket at path. Returns false with *err on failure.
bool NotifyService(const std::string& path, const std::string& state, std::string* err);

}  // namespace affinityd
