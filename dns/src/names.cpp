// Name and address text: normalized names, IP literals (RFC 5321 section 4.1.3) and reverse
// names for PTR lookups (RFC 1035 section 3.5, RFC 3596 section 2.5).
#include "names.hpp"

#include "dns/domain_name.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace relayq::dns {

std::string normalize_name(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  return lower_case(name);
}

std::optional<IpAddress> parse_address_literal(std::string_view text) {
  if (!text.starts_with('[') || !text.ends_with(']')) return std::nullopt;
  text = text.substr(1, text.size() - 2);
  constexpr std::string_view tag = "ipv6:";
  const bool tagged = text.size() > tag.size() && normalize_name(text.substr(0, tag.size())) == tag;
  if (tagged) text.remove_prefix(tag.size());
  auto address = IpAddress::parse(text);
  if (address && tagged && !address->v6) return std::nullopt;
  return address;
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

}  // namespace relayq::dns
