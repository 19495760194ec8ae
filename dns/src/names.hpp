// Name and address text: normalized names and IP literals.
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

}  // namespace relayq::dns
