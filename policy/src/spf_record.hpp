// An SPF record parsed into its terms (RFC 7208 sections 4.5, 4.6.1, 5, 6 and 12): mechanisms
// with qualifiers, the redirect= and exp= modifiers. Parsing checks the whole record, so a
// syntax error anywhere is a permerror before anything is evaluated. Pure, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/ip_address.hpp"
#include "policy/spf.hpp"
#include "spf_macro.hpp"

namespace relayq::policy::spf {

enum class Mechanism { all, include, a, mx, ptr, ip4, ip6, exists };

struct Directive {
  SpfResult qualifier = SpfResult::pass;  // what a match yields: pass, fail, softfail, neutral
  Mechanism mechanism = Mechanism::all;
  std::string text;                   // as written, for logs
  std::optional<MacroString> domain;  // include, exists; a, mx, ptr when given
  dns::IpAddress network;             // ip4, ip6
  int ip4_prefix = 32;                // ip4, a, mx
  int ip6_prefix = 128;               // ip6, a, mx

  // The mechanisms that cost a DNS query and count against the limit of 10 (4.6.4).
  bool counts_as_lookup() const;
};

struct Record {
  std::vector<Directive> directives;
  std::optional<MacroString> redirect;
  std::optional<MacroString> explanation;
};

struct ParsedRecord {
  Record record;
  std::string error;  // non-empty: the record is a permerror, and this says why
};

// "v=spf1" alone or followed by a space, in any case (4.5).
bool is_spf_record(std::string_view text);

// `text` is a record that is_spf_record() accepted.
ParsedRecord parse_record(std::string_view text);

// domain-spec (7.1): a valid macro string ending in a macro or in "." toplabel ["."].
std::optional<MacroString> parse_domain_spec(std::string_view text);

}  // namespace relayq::policy::spf
