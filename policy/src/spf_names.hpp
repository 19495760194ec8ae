// Domain names as SPF checks them: the initial <domain> (RFC 7208 4.3), names made by macro
// expansion (7.3), top labels (7.1) and PTR names under a target (5.5). Pure, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relayq::policy::spf {

// toplabel: letters, digits and inner hyphens, and not all digits.
bool is_toplabel(std::string_view label);

// A <domain> check_host() can start from: at most 253 octets, labels of 1 to 63, at least
// two of them, the last a toplabel; a trailing dot is allowed. Domain literals fail.
bool is_valid_domain(std::string_view name);

// An expanded domain-spec as a name to query: the trailing dot gone, left-hand labels dropped
// until it fits 253 octets; nullopt when a label is empty or longer than 63 octets, which no
// DNS query can carry.
std::optional<std::string> query_name(std::string_view expanded);

// `name` is `target` or a subdomain of it, ignoring ASCII case and trailing dots.
bool is_within(std::string_view name, std::string_view target);

}  // namespace relayq::policy::spf
