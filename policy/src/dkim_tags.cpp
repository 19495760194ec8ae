// Reading a DKIM-Signature's tag-list (RFC 6376 3.2) for the tags relayq needs before and after
// libopendkim runs, and a key record's for its key. Pure functions on text; any thread.
#include "dkim_tags.hpp"

#include <set>

#include "dns/domain_name.hpp"
#include "policy/dkim.hpp"

namespace relayq::policy {
namespace {

// Inside a header field's value the CRLFs of its folds are whitespace too.
bool is_fws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool is_tag_name_char(char c) {
  return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

// VALCHAR: printable ASCII but ';'.
bool is_value_char(char c) {
  return c >= 0x21 && c <= 0x7e && c != ';';
}

std::string_view trim_fws(std::string_view text) {
  while (!text.empty() && is_fws(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_fws(text.back())) text.remove_suffix(1);
  return text;
}

bool is_tag_name(std::string_view name) {
  if (name.empty() || !is_alpha(name.front())) return false;
  for (char c : name)
    if (!is_tag_name_char(c)) return false;
  return true;
}

bool is_tag_value(std::string_view value) {
  for (char c : value)
    if (!is_value_char(c) && !is_fws(c)) return false;
  return true;
}

// What d= and s= may hold once unfolded: DNS labels and dots (RFC 6376 3.5; '_' as selectors in
// use have it). Anything else could not be asked for anyway.
bool is_name_text(std::string_view text) {
  for (char c : text)
    if (!is_tag_name_char(c) && c != '-' && c != '.') return false;
  return true;
}

std::string without_fws(std::string_view value) {
  std::string kept;
  for (char c : value)
    if (!is_fws(c)) kept.push_back(c);
  return kept;
}

}  // namespace

std::optional<DkimTags> parse_dkim_tags(std::string_view value) {
  DkimTags tags;
  std::set<std::string_view> seen;
  std::size_t start = 0;
  for (;;) {
    const std::size_t semicolon = value.find(';', start);
    const bool last = semicolon == std::string_view::npos;
    const std::string_view spec =
        trim_fws(value.substr(start, last ? std::string_view::npos : semicolon - start));
    // tag-list = tag-spec *( ";" tag-spec ) [ ";" ]: only the text after a final ';' may be empty.
    if (spec.empty()) return last && start > 0 ? std::optional(tags) : std::nullopt;
    const std::size_t equals = spec.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    const std::string_view name = trim_fws(spec.substr(0, equals));
    const std::string_view tag_value = trim_fws(spec.substr(equals + 1));
    if (!is_tag_name(name) || !is_tag_value(tag_value) || !seen.insert(name).second)
      return std::nullopt;
    if (name == "d") tags.domain = without_fws(tag_value);
    if (name == "s") tags.selector = without_fws(tag_value);
    if (name == "a") tags.algorithm = without_fws(tag_value);
    if (name == "b") tags.signature = without_fws(tag_value);
    if (name == "p") tags.key = without_fws(tag_value);
    if (!is_name_text(tags.domain) || !is_name_text(tags.selector)) return std::nullopt;
    if (last) return tags;
    start = semicolon + 1;
  }
}

std::string dkim_record_key(std::string_view record) {
  const auto tags = parse_dkim_tags(record);
  return tags ? tags->key : std::string();
}

std::string dkim_key_record_name(std::string_view selector, std::string_view domain) {
  std::string name(selector);
  name += "._domainkey.";
  name += domain;
  return dns::lower_case(name);
}

}  // namespace relayq::policy
