// IpAddress and Cidr: text and socket-address conversions, reverse (PTR) names (RFC 1035
// section 3.5, RFC 3596 section 2.5), and network membership.
#include "dns/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace relayq::dns {

namespace {

constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const IpAddress& address) {
  return address.v6 &&
         std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), address.bytes.begin());
}

// ::ffff:a.b.c.d as the IPv4 address a.b.c.d, anything else unchanged: a dual-stack socket
// reports IPv4 clients that way, and they must match the IPv4 networks an operator wrote.
IpAddress unmapped(const IpAddress& address) {
  if (!is_v4_mapped(address)) return address;
  IpAddress v4;
  std::copy_n(address.bytes.begin() + 12, 4, v4.bytes.begin());
  return v4;
}

int max_prefix(const IpAddress& address) {
  return address.v6 ? 128 : 32;
}

// Clears every bit after the first `prefix` bits.
void mask(std::array<std::uint8_t, 16>& bytes, int prefix) {
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - 8 * i, 0, 8);
    bytes[i] &= static_cast<std::uint8_t>(0xff00 >> bits);
  }
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string copy(text);  // inet_pton needs a terminated string
  IpAddress address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  address = IpAddress{.v6 = true};
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  IpAddress result;
  if (address->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, address, sizeof in);  // the caller's buffer may not be aligned for it
    std::memcpy(result.bytes.data(), &in.sin_addr, 4);
    return result;
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, address, sizeof in6);
    result.v6 = true;
    std::memcpy(result.bytes.data(), &in6.sin6_addr, 16);
    return result;
  }
  return std::nullopt;
}

IpAddress IpAddress::from_bytes(bool v6, const void* bytes) {
  IpAddress result;
  result.v6 = v6;
  std::memcpy(result.bytes.data(), bytes, v6 ? 16 : 4);
  return result;
}

sockaddr_storage IpAddress::to_sockaddr(std::uint16_t port) const {
  sockaddr_storage storage{};
  if (v6) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, bytes.data(), 16);
    std::memcpy(&storage, &in6, sizeof in6);
  } else {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, bytes.data(), 4);
    std::memcpy(&storage, &in, sizeof in);
  }
  return storage;
}

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text);
  return text;
}

std::string reverse_name(const IpAddress& address) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string name;
  if (address.v6) {
    for (int i = 15; i >= 0; --i) {
      name += hex[address.bytes[i] & 0xF];
      name += '.';
      name += hex[address.bytes[i] >> 4];
      name += '.';
    }
    return name + "ip6.arpa";
  }
  for (int i = 3; i >= 0; --i) name += std::to_string(address.bytes[i]) + '.';
  return name + "in-addr.arpa";
}

// Host bits may be set ("10.1.2.3/8" is 10.0.0.0/8): they are cleared here, so the network is
// what the prefix says, as with most routers' and MTAs' configs.
std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto network = IpAddress::parse(text.substr(0, slash));
  if (!network) return std::nullopt;
  Cidr cidr{*network, max_prefix(*network)};
  if (slash != std::string_view::npos) {
    // Digits only, since from_chars would quietly stop at the "x" of "/8x".
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    std::from_chars(digits.data(), digits.data() + digits.size(), cidr.prefix);
    if (cidr.prefix > max_prefix(*network)) return std::nullopt;
  }
  mask(cidr.network.bytes, cidr.prefix);
  return cidr;
}

bool Cidr::contains(const IpAddress& address) const {
  // A mapped client is compared as IPv4 against IPv4 networks, and as written against IPv6
  // ones, so that ::ffff:0:0/96 also matches it.
  const IpAddress candidate = network.v6 ? address : unmapped(address);
  if (candidate.v6 != network.v6) return false;
  auto bytes = candidate.bytes;
  mask(bytes, prefix);
  return bytes == network.bytes;
}

}  // namespace relayq::dns
