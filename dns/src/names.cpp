// Name and address text: normalized names and IP literals (RFC 5321 section 4.1.3).
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

}  // namespace relayq::dns
