// The few DKIM tags relayq reads itself (RFC 6376 3.2, 3.5 and 3.6.1): of a DKIM-Signature, whom
// to ask for the key and how Authentication-Results names the signature; of a key record, the
// key. Pure functions on text; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relayq::policy {

struct DkimTags {
  std::string domain;     // d=
  std::string selector;   // s=
  std::string algorithm;  // a=
  std::string signature;  // b=, base64 without its folding whitespace
  std::string key;        // p= of a key record, base64 without its whitespace
};

// The tags of a DKIM-Signature field's value (or of a key record, the same tag-list), with
// whitespace inside the values removed (as libopendkim does); an absent tag reads as empty.
// nullopt when the value is not a tag-list (RFC 6376 3.2: a tag name that is not ALPHA *(ALPHA /
// DIGIT / "_"), a value byte outside VALCHAR, an empty spec, a tag given twice) or when d= or s=
// holds more than letters, digits, '-', '_' and '.'.
std::optional<DkimTags> parse_dkim_tags(std::string_view value);

// "selector._domainkey.domain", lower-case: the name a key record is fetched and looked up by.
std::string dkim_key_record_name(std::string_view selector, std::string_view domain);

}  // namespace relayq::policy
