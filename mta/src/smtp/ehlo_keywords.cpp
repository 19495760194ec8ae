// EHLO keywords as data: the flag each one sets, and SIZE with its limit (RFC 1870).
#include "mta/smtp/ehlo_keywords.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "mta/common/ascii.hpp"

namespace relayq::mta {

namespace {

struct Keyword {
  std::string_view name;
  bool ServerExtensions::*flag;
};

constexpr std::array<Keyword, 7> kKeywords = {{
    {"PIPELINING", &ServerExtensions::pipelining},
    {"SIZE", &ServerExtensions::size},
    {"8BITMIME", &ServerExtensions::eight_bit_mime},
    {"SMTPUTF8", &ServerExtensions::smtputf8},
    {"ENHANCEDSTATUSCODES", &ServerExtensions::enhanced_status_codes},
    {"CHUNKING", &ServerExtensions::chunking},
    {"STARTTLS", &ServerExtensions::starttls},  // RFC 3207
}};

// "SIZE" alone or "SIZE 0" announce no fixed maximum; a garbled number is ignored likewise.
std::optional<std::uint64_t> size_limit(std::string_view parameter) {
  if (parameter.empty() || !std::all_of(parameter.begin(), parameter.end(), is_digit))
    return std::nullopt;
  std::uint64_t limit = 0;
  const auto [end, error] =
      std::from_chars(parameter.data(), parameter.data() + parameter.size(), limit);
  if (error != std::errc() || limit == 0) return std::nullopt;
  return limit;
}

}  // namespace

ServerExtensions parse_ehlo_reply(std::string_view text) {
  ServerExtensions extensions;
  std::size_t lf = text.find('\n');
  while (lf != std::string_view::npos) {
    const std::size_t start = lf + 1;
    lf = text.find('\n', start);
    std::string_view line = text.substr(start, lf == std::string_view::npos ? lf : lf - start);
    if (line.size() <= 4) continue;
    line.remove_prefix(4);  // "250-" or "250 "
    const std::size_t space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const auto keyword = std::find_if(kKeywords.begin(), kKeywords.end(), [&](const Keyword& k) {
      return equals_ignore_case(k.name, name);
    });
    if (keyword == kKeywords.end()) continue;
    extensions.*(keyword->flag) = true;
    if (keyword->flag == &ServerExtensions::size && space != std::string_view::npos)
      extensions.size_limit = size_limit(line.substr(space + 1));
  }
  return extensions;
}

}  // namespace relayq::mta
