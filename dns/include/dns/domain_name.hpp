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

// "user@Example.ORG" -> "example.org": the part after the last '@', lower-cased; "" when there
// is none ("postmaster").
inline std::string domain_of_mailbox(std::string_view mailbox) {
  const auto at = mailbox.rfind('@');
  return at == std::string_view::npos ? std::string() : lower_case(mailbox.substr(at + 1));
}

}  // namespace relayq::dns
