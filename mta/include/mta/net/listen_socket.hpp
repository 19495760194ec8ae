// Listening sockets with SO_REUSEPORT, so that every event loop accepts on its own socket and
// the kernel spreads connections across them.
#pragma once

#include <cstdint>
#include <string>

namespace relayq::mta::net {

// Binds and listens on host:port (host is a numeric IPv4 or IPv6 address). Returns the file
// descriptor; throws std::runtime_error naming the address on failure.
int open_listen_socket(const std::string& host, std::uint16_t port);

}  // namespace relayq::mta::net
