// Reading a DMARC policy record (RFC 7489 6.3, 6.4): the tag list of a TXT record at _dmarc.
// Pure functions; any thread.
#include "policy/dmarc.hpp"

#include <algorithm>
#include <cctype>

#include "dns/domain_name.hpp"

namespace relayq::policy {
namespace {

struct Tag {
  std::string name;  // lower-case: ABNF literals are case-insensitive
  std::string_view value;
};

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// "v=DMARC1; p=reject;" -> (v, DMARC1), (p, reject). Empty parts (a final ';') are no tags; a
// part without '=' is a tag with an empty value, which no tag accepts.
std::vector<Tag> tag_list(std::string_view txt) {
  std::vector<Tag> tags;
  while (!txt.empty()) {
    const auto semicolon = txt.find(';');
    const std::string_view part = trim(txt.substr(0, semicolon));
    txt = semicolon == std::string_view::npos ? std::string_view() : txt.substr(semicolon + 1);
    if (part.empty()) continue;
    const auto equals = part.find('=');
    tags.push_back(
        {dns::lower_case(trim(part.substr(0, equals))),
         equals == std::string_view::npos ? std::string_view() : trim(part.substr(equals + 1))});
  }
  return tags;
}

std::optional<DmarcPolicy> policy_of(std::string_view value) {
  const std::string word = dns::lower_case(value);
  if (word == "none") return DmarcPolicy::none;
  if (word == "quarantine") return DmarcPolicy::quarantine;
  if (word == "reject") return DmarcPolicy::reject;
  return std::nullopt;
}

// adkim= and aspf=: "s" strict, "r" relaxed; anything else keeps the default.
void read_alignment(std::string_view value, bool* strict) {
  const std::string mode = dns::lower_case(value);
  if (mode == "s" || mode == "r") *strict = mode == "s";
}

// pct=: 1*3DIGIT from 0 to 100.
void read_percent(std::string_view value, int* percent) {
  if (value.empty() || value.size() > 3 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return;
  const int number = std::stoi(std::string(value));
  if (number <= 100) *percent = number;
}

// RFC 3986 scheme ":" something, then an optional "!size[kmgt]" (RFC 7489 6.4 dmarc-uri).
bool is_report_uri(std::string_view uri) {
  const auto bang = uri.rfind('!');
  if (bang != std::string_view::npos) {
    std::string_view size = uri.substr(bang + 1);
    if (!size.empty() && std::string_view("kmgtKMGT").find(size.back()) != std::string_view::npos)
      size.remove_suffix(1);
    if (size.empty() ||
        !std::all_of(size.begin(), size.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    uri = uri.substr(0, bang);
  }
  const auto colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == uri.size() ||
      !std::isalpha(static_cast<unsigned char>(uri[0])))
    return false;
  return std::all_of(uri.begin(), uri.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

// rua= and ruf=: comma-separated URIs (a ',' inside one is percent-encoded); bad ones dropped.
std::vector<std::string> report_uris(std::string_view value) {
  std::vector<std::string> uris;
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view uri = trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (is_report_uri(uri)) uris.emplace_back(uri);
  }
  return uris;
}

}  // namespace

std::string_view to_string(DmarcPolicy policy) {
  switch (policy) {
    case DmarcPolicy::none:
      return "none";
    case DmarcPolicy::quarantine:
      return "quarantine";
    case DmarcPolicy::reject:
      return "reject";
  }
  return "none";
}

// Selection only looks at the start ("v=DMARC1 p=none", missing its ';', is a DMARC record,
// and an invalid one); the value "DMARC1" is case-sensitive (%x44.4d.41.52.43.31 in 6.4).
bool is_dmarc_record(std::string_view txt) {
  const auto tags = tag_list(txt.substr(0, txt.find(';')));
  if (tags.empty() || tags.front().name != "v") return false;
  const std::string_view version = tags.front().value;
  return version.starts_with("DMARC1") &&
         (version.size() == 6 || version[6] == ' ' || version[6] == '\t');
}

std::optional<DmarcRecord> parse_dmarc_record(std::string_view txt) {
  const auto tags = tag_list(txt);
  if (tags.empty() || tags.front().name != "v" || tags.front().value != "DMARC1")
    return std::nullopt;
  DmarcRecord record;
  std::optional<DmarcPolicy> policy;
  bool subdomain_policy_valid = true;
  std::vector<std::string> seen;
  for (auto tag = tags.begin() + 1; tag != tags.end(); ++tag) {
    if (std::find(seen.begin(), seen.end(), tag->name) != seen.end()) continue;
    seen.push_back(tag->name);
    if (tag->name == "p") {
      policy = policy_of(tag->value);
    } else if (tag->name == "sp") {
      record.subdomain_policy = policy_of(tag->value);
      subdomain_policy_valid = record.subdomain_policy.has_value();
    } else if (tag->name == "adkim") {
      read_alignment(tag->value, &record.strict_dkim);
    } else if (tag->name == "aspf") {
      read_alignment(tag->value, &record.strict_spf);
    } else if (tag->name == "pct") {
      read_percent(tag->value, &record.percent);
    } else if (tag->name == "rua") {
      record.aggregate_report_uris = report_uris(tag->value);
    } else if (tag->name == "ruf") {
      record.failure_report_uris = report_uris(tag->value);
    }
  }
  if (policy && subdomain_policy_valid) {
    record.policy = *policy;
    return record;
  }
  // 6.6.3 step 6: a domain that asks for reports still gets them, under p=none.
  if (record.aggregate_report_uris.empty()) return std::nullopt;
  record.policy = DmarcPolicy::none;
  record.subdomain_policy.reset();
  return record;
}

}  // namespace relayq::policy
