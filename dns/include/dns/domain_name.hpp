// Domain names compare without regard to ASCII case (RFC 4343): the one lower-casing of
// relayq, for routes, relay domains, retry policies and statistics. Any thread, no state.
#pragma once

#include <string>
#include <string_view>

namespace relayq::dns {

// ASCII only: names reach relayq in their A-label (punycode) form, and bytes above 0x7F are
// left alone rather than read in whatever locale the process has.
inline std::string lower_case(std::string_view name) {
  std::string lower(name);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return lower;
}

// The same name in any case, without a copy (header field names and authserv-ids too).
inline bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

// "user@Example.ORG" -> "example.org": the part after the last '@', lower-cased; "" when there
// is none ("postmaster").
inline std::string domain_of_mailbox(std::string_view mailbox) {
  const auto at = mailbox.rfind('@');
  return at == std::string_view::npos ? std::string() : lower_case(mailbox.substr(at + 1));
}

}  // namespace relayq::dns
