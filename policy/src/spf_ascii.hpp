// The ASCII character classes of SPF's grammar (RFC 7208 section 12 uses ABNF's ALPHA and
// DIGIT): bytes above 0x7F belong to none of them. Pure, any thread.
#pragma once

#include <algorithm>
#include <string_view>

namespace relayq::policy::spf {

inline bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
inline char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace relayq::policy::spf
