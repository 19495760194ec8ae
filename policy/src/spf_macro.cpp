// SPF macro strings: the grammar of RFC 7208 section 7.1 and the expansion of 7.3. Pure, any
// thread.
#include "spf_macro.hpp"

#include <algorithm>
#include <string_view>

#include "spf_ascii.hpp"

namespace relayq::policy::spf {
namespace {

constexpr std::string_view kDomainLetters = "slodipvh";
constexpr std::string_view kExplanationOnlyLetters = "crt";
constexpr std::string_view kDelimiters = ".-+,/_=";
// RFC 7208 asks for at least 128 parts to be supported; a larger count keeps every part, so
// counting stops here rather than overflowing.
constexpr int kMaxParts = 1000;

// The inside of "%{...}": macro-letter transformers *delimiter.
std::optional<MacroExpand> parse_expand(std::string_view body, MacroUse use) {
  if (body.empty()) return std::nullopt;
  MacroExpand expand;
  expand.letter = lower(body[0]);
  expand.url_escape = body[0] != expand.letter;
  const bool allowed = kDomainLetters.find(expand.letter) != std::string_view::npos ||
                       (use == MacroUse::explanation &&
                        kExplanationOnlyLetters.find(expand.letter) != std::string_view::npos);
  if (!allowed) return std::nullopt;
  std::size_t i = 1;
  bool has_digits = false;
  for (; i < body.size() && is_digit(body[i]); ++i) {
    has_digits = true;
    expand.keep = std::min(kMaxParts, expand.keep * 10 + (body[i] - '0'));
  }
  // "%{d0}" would keep nothing: the count, when given, must be at least one.
  if (has_digits && expand.keep == 0) return std::nullopt;
  if (i < body.size() && lower(body[i]) == 'r') {
    expand.reverse = true;
    ++i;
  }
  for (; i < body.size(); ++i) {
    if (kDelimiters.find(body[i]) == std::string_view::npos) return std::nullopt;
    expand.delimiters += body[i];
  }
  return expand;
}

std::string value_of(char letter, const MacroValues& values) {
  switch (letter) {
    case 's':
      return values.sender;
    case 'l':
      return values.local_part;
    case 'o':
      return values.sender_domain;
    case 'd':
      return values.domain;
    case 'i':
      return dotted_address(values.client);
    case 'p':
      return values.validated_name;
    case 'v':
      return values.client.v6 ? "ip6" : "in-addr";
    case 'h':
      return values.helo;
    case 'c':
      return values.client.to_string();
    case 'r':
      return values.receiver.empty() ? "unknown" : values.receiver;
    case 't':
      return std::to_string(values.timestamp);
  }
  return {};
}

// Split on the delimiters, reverse, keep the right-hand parts, join with dots.
std::string transform(const std::string& value, const MacroExpand& expand) {
  if (expand.keep == 0 && !expand.reverse && expand.delimiters.empty()) return value;
  const std::string_view delimiters =
      expand.delimiters.empty() ? std::string_view(".") : std::string_view(expand.delimiters);
  std::vector<std::string_view> parts;
  std::string_view rest = value;
  for (;;) {
    const auto at = rest.find_first_of(delimiters);
    parts.push_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }
  if (expand.reverse) std::reverse(parts.begin(), parts.end());
  const std::size_t keep = expand.keep == 0 ? parts.size() : static_cast<std::size_t>(expand.keep);
  const std::size_t first = parts.size() > keep ? parts.size() - keep : 0;
  std::string joined;
  for (std::size_t i = first; i < parts.size(); ++i) {
    if (i != first) joined += '.';
    joined += parts[i];
  }
  return joined;
}

// Upper-case macro letters are URL-escaped: everything but RFC 3986's unreserved characters.
std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string escaped;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      escaped += c;
    } else {
      escaped += '%';
      escaped += kHex[byte >> 4];
      escaped += kHex[byte & 0xf];
    }
  }
  return escaped;
}

}  // namespace

bool MacroString::uses(char letter) const {
  return std::any_of(pieces.begin(), pieces.end(), [letter](const auto& piece) {
    const auto* expand = std::get_if<MacroExpand>(&piece);
    return expand != nullptr && expand->letter == letter;
  });
}

std::string MacroString::trailing_literal() const {
  std::string text;
  for (const auto& piece : pieces) {
    if (const auto* literal = std::get_if<std::string>(&piece)) {
      text += *literal;
    } else {
      text.clear();
    }
  }
  return text;
}

std::optional<MacroString> parse_macro_string(std::string_view text, MacroUse use) {
  MacroString macro;
  std::string literal;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c != '%') {
      // macro-literal is visible ASCII; explain-string adds spaces.
      const bool visible = c >= 0x21 && c <= 0x7e;
      if (!visible && !(c == ' ' && use == MacroUse::explanation)) return std::nullopt;
      literal += c;
      ++i;
      continue;
    }
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (next == '%' || next == '_' || next == '-') {
      literal += next == '%' ? "%" : next == '_' ? " " : "%20";
      i += 2;
      continue;
    }
    if (next != '{') return std::nullopt;
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) return std::nullopt;
    auto expand = parse_expand(text.substr(i + 2, close - i - 2), use);
    if (!expand) return std::nullopt;
    if (!literal.empty()) macro.pieces.emplace_back(std::move(literal));
    literal.clear();
    macro.pieces.emplace_back(std::move(*expand));
    i = close + 1;
  }
  if (!literal.empty()) macro.pieces.emplace_back(std::move(literal));
  return macro;
}

std::string expand(const MacroString& macro, const MacroValues& values) {
  std::string text;
  for (const auto& piece : macro.pieces) {
    if (const auto* literal = std::get_if<std::string>(&piece)) {
      text += *literal;
      continue;
    }
    const auto& expand = std::get<MacroExpand>(piece);
    std::string value = transform(value_of(expand.letter, values), expand);
    text += expand.url_escape ? url_escape(value) : value;
  }
  return text;
}

std::string dotted_address(const dns::IpAddress& address) {
  if (!address.v6) return address.to_string();
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  for (const auto byte : address.bytes) {
    if (!text.empty()) text += '.';
    text += kHex[byte >> 4];
    text += '.';
    text += kHex[byte & 0xf];
  }
  return text;
}

}  // namespace relayq::policy::spf
