// IPv4/IPv6 addresses and CIDR networks, parsed from text or taken from a socket address.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace relayq::policy {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4

  static std::optional<IpAddress> parse(std::string_view text);
  static std::optional<IpAddress> from_sockaddr(const sockaddr* address);
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress network;
  int prefix = 0;

  // "10.0.0.0/8", "::1/128", or a bare address (a host route).
  static std::optional<Cidr> parse(std::string_view text);
  // IPv4-mapped IPv6 clients (::ffff:a.b.c.d) match IPv4 networks.
  bool contains(const IpAddress& address) const;
};

}  // namespace relayq::policy
