// IPv4/IPv6 addresses and CIDR networks, parsed from text or taken from a socket address: the
// one address type of relayq, for DNS answers, next hops, clients and relay networks. Any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/socket.h>

namespace relayq::dns {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4

  static std::optional<IpAddress> parse(std::string_view text);
  static std::optional<IpAddress> from_sockaddr(const sockaddr* address);
  // 4 bytes (IPv4) or 16 (IPv6) in network order, as in_addr and in6_addr hold them.
  static IpAddress from_bytes(bool v6, const void* bytes);
  std::string to_string() const;
  sockaddr_storage to_sockaddr(std::uint16_t port) const;
  bool operator==(const IpAddress&) const = default;
};

// The name its PTR record is at: "1.2.0.192.in-addr.arpa" or the nibble form under ip6.arpa.
std::string reverse_name(const IpAddress& address);

struct Cidr {
  IpAddress network;
  int prefix = 0;

  // "10.0.0.0/8", "::1/128", or a bare address (a host route).
  static std::optional<Cidr> parse(std::string_view text);
  // IPv4-mapped IPv6 clients (::ffff:a.b.c.d) match IPv4 networks.
  bool contains(const IpAddress& address) const;
};

}  // namespace relayq::dns
