// SPF macro strings (RFC 7208 section 7): their syntax, checked when a record is parsed, and
// their expansion against one check's values. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dns/ip_address.hpp"

namespace relayq::policy::spf {

// Where a macro string stands decides what it may hold: the letters c, r and t, and spaces,
// only in explanation text (7.1).
enum class MacroUse { domain_spec, explanation };

// One "%{...}": the letter, its transformers and delimiters.
struct MacroExpand {
  char letter = 'd';        // lower-case
  bool url_escape = false;  // the letter was upper-case (7.3)
  int keep = 0;             // how many right-hand parts to keep; 0 keeps all
  bool reverse = false;
  std::string delimiters;  // empty means "."
};

// Literal text ("%%", "%_" and "%-" already decoded) and expansions, in order.
struct MacroString {
  std::vector<std::variant<std::string, MacroExpand>> pieces;

  bool uses(char letter) const;
  // The literal text after the last %{...} (all of it when there is none): the grammar of
  // domain-spec checks how it ends (7.1).
  std::string trailing_literal() const;
};

std::optional<MacroString> parse_macro_string(std::string_view text, MacroUse use);

// The values the letters stand for in one check (7.2).
struct MacroValues {
  std::string sender;          // s: local-part@domain
  std::string local_part;      // l
  std::string sender_domain;   // o
  std::string domain;          // d: the <domain> of the current check_host()
  dns::IpAddress client;       // i, c, v (IPv4-mapped addresses already made IPv4)
  std::string validated_name;  // p
  std::string helo;            // h
  std::string receiver;        // r
  std::int64_t timestamp = 0;  // t
};

std::string expand(const MacroString& macro, const MacroValues& values);

// "1.2.3.4", or the 32 upper-case nibbles of an IPv6 address joined by dots (7.3, "i").
std::string dotted_address(const dns::IpAddress& address);

}  // namespace relayq::policy::spf
