// SPF record syntax: terms split on spaces, each a directive or a modifier, following the
// ABNF of RFC 7208 section 12. Pure, any thread.
#include "spf_record.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "spf_ascii.hpp"
#include "spf_names.hpp"

namespace relayq::policy::spf {
namespace {

// A CIDR length: "0", or digits without a leading zero (the suite reads "/032" as an error,
// as ip4-network forbids leading zeros), at most `max`.
std::optional<int> parse_prefix(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0') ||
      !std::all_of(digits.begin(), digits.end(), is_digit)) {
    return std::nullopt;
  }
  int value = 0;
  for (const char c : digits) value = value * 10 + (c - '0');
  if (value > max) return std::nullopt;
  return value;
}

// ip4-network: four decimal octets without leading zeros; inet_pton is laxer than that.
std::optional<dns::IpAddress> parse_ip4(std::string_view text) {
  dns::IpAddress address;
  for (int octet = 0; octet < 4; ++octet) {
    const auto dot = text.find('.');
    if ((dot == std::string_view::npos) != (octet == 3)) return std::nullopt;
    const auto value = parse_prefix(text.substr(0, dot), 255);
    if (!value) return std::nullopt;
    address.bytes[octet] = static_cast<std::uint8_t>(*value);
    text.remove_prefix(dot == std::string_view::npos ? text.size() : dot + 1);
  }
  return address;
}

std::optional<dns::IpAddress> parse_ip6(std::string_view text) {
  const std::string copy(text);
  dns::IpAddress address{.v6 = true};
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) != 1) return std::nullopt;
  return address;
}

// Takes dual-cidr-length ([ "/" ip4 ] [ "//" ip6 ]) off the end of `rest`. A domain-spec may
// hold slashes itself, so only digits after one or two slashes at the very end are a CIDR.
bool take_dual_cidr(std::string_view& rest, Directive& directive) {
  const auto take = [&rest](int& slashes) -> std::string_view {
    std::size_t digits = 0;
    while (digits < rest.size() && is_digit(rest[rest.size() - 1 - digits])) ++digits;
    slashes = 0;
    while (digits > 0 && digits + slashes < rest.size() &&
           rest[rest.size() - 1 - digits - slashes] == '/') {
      ++slashes;
    }
    if (slashes == 0) return {};
    const auto number = rest.substr(rest.size() - digits);
    rest.remove_suffix(digits + slashes);
    return number;
  };
  int slashes = 0;
  auto number = take(slashes);
  if (slashes == 2) {
    const auto prefix = parse_prefix(number, 128);
    if (!prefix) return false;
    directive.ip6_prefix = *prefix;
    number = take(slashes);
  }
  if (slashes == 0) return true;
  if (slashes != 1) return false;
  const auto prefix = parse_prefix(number, 32);
  if (!prefix) return false;
  directive.ip4_prefix = *prefix;
  return true;
}

// ":" domain-spec, required or optional.
bool take_domain(std::string_view rest, bool required, Directive& directive) {
  if (rest.empty()) return !required;
  if (rest[0] != ':') return false;
  directive.domain = parse_domain_spec(rest.substr(1));
  return directive.domain.has_value();
}

bool take_network(std::string_view rest, bool v6, Directive& directive) {
  if (rest.empty() || rest[0] != ':') return false;
  rest.remove_prefix(1);
  const auto slash = rest.find('/');
  const auto address = v6 ? parse_ip6(rest.substr(0, slash)) : parse_ip4(rest.substr(0, slash));
  if (!address) return false;
  directive.network = *address;
  if (slash == std::string_view::npos) return true;
  const auto prefix = parse_prefix(rest.substr(slash + 1), v6 ? 128 : 32);
  if (!prefix) return false;
  (v6 ? directive.ip6_prefix : directive.ip4_prefix) = *prefix;
  return true;
}

struct MechanismName {
  std::string_view name;
  Mechanism mechanism;
};
constexpr std::array<MechanismName, 8> kMechanisms = {{{"all", Mechanism::all},
                                                       {"include", Mechanism::include},
                                                       {"a", Mechanism::a},
                                                       {"mx", Mechanism::mx},
                                                       {"ptr", Mechanism::ptr},
                                                       {"ip4", Mechanism::ip4},
                                                       {"ip6", Mechanism::ip6},
                                                       {"exists", Mechanism::exists}}};

std::optional<Directive> parse_directive(std::string_view term) {
  Directive directive;
  directive.text = std::string(term);
  const std::string_view qualifiers = "+-~?";
  const auto qualifier = qualifiers.find(term[0]);
  if (qualifier != std::string_view::npos) {
    constexpr std::array<SpfResult, 4> kResults = {SpfResult::pass, SpfResult::fail,
                                                   SpfResult::softfail, SpfResult::neutral};
    directive.qualifier = kResults[qualifier];
    term.remove_prefix(1);
  }
  const auto name_end = std::min(term.find(':'), term.find('/'));
  const auto name = term.substr(0, name_end);
  std::string_view rest = term.substr(name.size());
  const auto known = std::find_if(kMechanisms.begin(), kMechanisms.end(),
                                  [name](const auto& entry) { return iequals(entry.name, name); });
  if (known == kMechanisms.end()) return std::nullopt;
  directive.mechanism = known->mechanism;
  bool valid = false;
  switch (directive.mechanism) {
    case Mechanism::all:
      valid = rest.empty();
      break;
    case Mechanism::include:
    case Mechanism::exists:
      valid = take_domain(rest, true, directive);
      break;
    case Mechanism::ptr:
      valid = take_domain(rest, false, directive);
      break;
    case Mechanism::a:
    case Mechanism::mx:
      valid = take_dual_cidr(rest, directive) && take_domain(rest, false, directive);
      break;
    case Mechanism::ip4:
      valid = take_network(rest, false, directive);
      break;
    case Mechanism::ip6:
      valid = take_network(rest, true, directive);
      break;
  }
  if (!valid) return std::nullopt;
  return directive;
}

// The end of a modifier's name (ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )) when an "="
// follows it at once; otherwise the term is a directive.
std::optional<std::size_t> modifier_name_end(std::string_view term) {
  if (!is_alpha(term[0])) return std::nullopt;
  std::size_t end = 1;
  while (end < term.size() &&
         (is_alnum(term[end]) || term[end] == '-' || term[end] == '_' || term[end] == '.')) {
    ++end;
  }
  if (end == term.size() || term[end] != '=') return std::nullopt;
  return end;
}

// Adds one modifier to `record`; an error text if it is malformed or repeated (6).
std::string add_modifier(std::string_view term, std::size_t name_end, Record& record) {
  const auto name = term.substr(0, name_end);
  const auto value = term.substr(name_end + 1);
  const bool redirect = iequals(name, "redirect");
  if (redirect || iequals(name, "exp")) {
    auto& slot = redirect ? record.redirect : record.explanation;
    if (slot) return "more than one " + std::string(name) + "= modifier";
    slot = parse_domain_spec(value);
    if (!slot) return "bad domain in '" + std::string(term) + "'";
    return {};
  }
  // Unknown modifiers are never expanded, but must still be valid macro strings (A/3); any
  // macro letter is grammatical there.
  if (!parse_macro_string(value, MacroUse::explanation)) {
    return "bad macro in '" + std::string(term) + "'";
  }
  return {};
}

}  // namespace

bool Directive::counts_as_lookup() const {
  switch (mechanism) {
    case Mechanism::include:
    case Mechanism::a:
    case Mechanism::mx:
    case Mechanism::ptr:
    case Mechanism::exists:
      return true;
    case Mechanism::all:
    case Mechanism::ip4:
    case Mechanism::ip6:
      return false;
  }
  return false;
}

bool is_spf_record(std::string_view text) {
  return text.size() >= 6 && iequals(text.substr(0, 6), "v=spf1") &&
         (text.size() == 6 || text[6] == ' ');
}

ParsedRecord parse_record(std::string_view text) {
  ParsedRecord parsed;
  std::string_view rest = text.substr(6);
  while (!rest.empty()) {
    const auto space = rest.find(' ');
    const auto term = rest.substr(0, space);
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
    if (term.empty()) continue;  // terms are separated by one or more spaces
    if (const auto name_end = modifier_name_end(term)) {
      parsed.error = add_modifier(term, *name_end, parsed.record);
    } else if (auto directive = parse_directive(term)) {
      parsed.record.directives.push_back(std::move(*directive));
    } else {
      parsed.error = "bad term '" + std::string(term) + "'";
    }
    if (!parsed.error.empty()) return parsed;
  }
  return parsed;
}

std::optional<MacroString> parse_domain_spec(std::string_view text) {
  if (text.empty()) return std::nullopt;
  auto macro = parse_macro_string(text, MacroUse::domain_spec);
  if (!macro) return std::nullopt;
  std::string tail = macro->trailing_literal();
  if (tail.empty()) return macro;  // ends in a macro-expand
  if (tail.back() == '.') tail.pop_back();
  const auto dot = tail.rfind('.');
  if (dot == std::string::npos || !is_toplabel(std::string_view(tail).substr(dot + 1))) {
    return std::nullopt;
  }
  return macro;
}

}  // namespace relayq::policy::spf
