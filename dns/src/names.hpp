// Name and address text: normalized names, IP literals and reverse (PTR) names.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"
#include "dns/resolver.hpp"

namespace relayq::dns {

// Lower-case (ASCII), without the trailing dot; "." becomes "".
std::string normalize_name(std::string_view name);

// An RFC 5321 address literal: "[192.0.2.1]", "[IPv6:2001:db8::1]" (the tag is optional here).
std::optional<IpAddress> parse_address_literal(std::string_view text);

// "1.2.0.192.in-addr.arpa" or the nibble form under ip6.arpa.
std::string reverse_name(const IpAddress& address);

}  // namespace relayq::dns
