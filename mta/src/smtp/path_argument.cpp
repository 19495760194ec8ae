// The RFC 5321 4.1.2 path grammar, with the UTF-8 extensions of RFC 6531 3.3.
#include "mta/smtp/path_argument.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "mta/common/ascii.hpp"

namespace relayq::mta {

namespace {

constexpr std::size_t kMaxDomain = 255;  // RFC 5321 4.5.3.1.2
constexpr std::size_t kMaxLabel = 63;    // RFC 1035 2.3.4

bool is_atext(char c) {
  return is_alnum(c) || is_non_ascii(c) || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

// qtextSMTP: printable ASCII except '"' and '\', plus UTF-8.
bool is_qtext(char c) {
  return (c >= 32 && c <= 126 && c != '"' && c != '\\') || is_non_ascii(c);
}

// dcontent of an address literal: printable ASCII except '[', '\' and ']'.
bool is_dcontent(char c) {
  return c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']';
}

// esmtp-value, widened to UTF-8 by RFC 6531 3.3.
bool is_esmtp_value(char c) {
  return (c >= 33 && c <= 126 && c != '=') || is_non_ascii(c);
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    unsigned min = 0;
    unsigned code = 0;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, min = 0x80, code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, min = 0x800, code = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, min = 0x10000, code = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (length > 1 && (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)))
      return false;
    i += length;
  }
  return true;
}

// A read position in the argument; every parse_* function either advances past what it
// recognised and returns true, or returns false (the caller then gives up on the whole path).
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool eat(char c) {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }
  void advance() { ++pos_; }
  std::size_t pos() const { return pos_; }
  std::string_view since(std::size_t start) const { return text_.substr(start, pos_ - start); }
  std::string_view rest() const { return text_.substr(pos_); }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// sub-domain *("." sub-domain); a sub-domain is letters, digits and inner hyphens (UTF-8 letters
// too, for U-labels).
bool parse_domain(Cursor& in) {
  const std::size_t start = in.pos();
  do {
    const std::size_t label = in.pos();
    while (!in.at_end() && (is_alnum(in.peek()) || is_non_ascii(in.peek()) || in.peek() == '-'))
      in.advance();
    const std::string_view text = in.since(label);
    if (text.empty() || text.front() == '-' || text.back() == '-') return false;
    const bool ascii = std::none_of(text.begin(), text.end(), is_non_ascii);
    if (ascii && text.size() > kMaxLabel) return false;
  } while (in.eat('.'));
  return in.since(start).size() <= kMaxDomain;
}

// "[" IPv4 / "IPv6:" IPv6 / tag ":" dcontent "]" (RFC 5321 4.1.3).
bool parse_address_literal(Cursor& in) {
  if (!in.eat('[')) return false;
  const std::size_t start = in.pos();
  while (!in.at_end() && is_dcontent(in.peek())) in.advance();
  const std::string literal(in.since(start));
  if (!in.eat(']')) return false;
  std::array<unsigned char, 16> bytes{};
  if (equals_ignore_case(std::string_view(literal).substr(0, 5), "IPv6:"))
    return inet_pton(AF_INET6, literal.c_str() + 5, bytes.data()) == 1;
  const auto colon = literal.find(':');
  if (colon == std::string::npos) return inet_pton(AF_INET, literal.c_str(), bytes.data()) == 1;
  // General-address-literal: Standardized-tag ":" 1*dcontent, the tag an Ldh-str.
  const std::string_view tag = std::string_view(literal).substr(0, colon);
  return !tag.empty() && tag.back() != '-' &&
         std::all_of(tag.begin(), tag.end(), [](char c) { return is_alnum(c) || c == '-'; }) &&
         colon + 1 < literal.size();
}

// Dot-string or Quoted-string.
bool parse_local_part(Cursor& in) {
  if (in.eat('"')) {
    while (!in.at_end() && in.peek() != '"') {
      if (in.eat('\\')) {
        if (in.at_end() || in.peek() < 32 || in.peek() > 126) return false;
        in.advance();
      } else if (is_qtext(in.peek())) {
        in.advance();
      } else {
        return false;
      }
    }
    return in.eat('"');
  }
  do {
    const std::size_t atom = in.pos();
    while (!in.at_end() && is_atext(in.peek())) in.advance();
    if (in.pos() == atom) return false;
  } while (in.eat('.'));
  return true;
}

// A-d-l ":" — the obsolete source route, parsed only to be dropped (RFC 5321 4.1.2, C.).
bool skip_source_route(Cursor& in) {
  do {
    if (!in.eat('@') || !parse_domain(in)) return false;
  } while (in.eat(','));
  return in.eat(':');
}

// SP-separated "keyword[=value]" after the path.
bool parse_params(Cursor& in, std::vector<EsmtpParam>& params) {
  if (in.at_end()) return true;
  if (!in.eat(' ')) return false;
  while (true) {
    while (in.eat(' ')) {
    }
    if (in.at_end()) return true;
    EsmtpParam param;
    const std::size_t keyword = in.pos();
    if (!is_alnum(in.peek())) return false;
    while (!in.at_end() && (is_alnum(in.peek()) || in.peek() == '-')) in.advance();
    param.keyword = in.since(keyword);
    if (in.eat('=')) {
      const std::size_t value = in.pos();
      while (!in.at_end() && is_esmtp_value(in.peek())) in.advance();
      param.value = in.since(value);
      param.has_value = true;
      if (param.value.empty()) return false;
    }
    if (!in.at_end() && in.peek() != ' ') return false;
    params.push_back(param);
  }
}

}  // namespace

PathArgument parse_path_argument(std::string_view argument, std::string_view keyword,
                                 bool allow_null) {
  PathArgument result;
  if (argument.size() <= keyword.size() ||
      !equals_ignore_case(argument.substr(0, keyword.size()), keyword) ||
      argument[keyword.size()] != ':') {
    result.status = PathStatus::bad_syntax;
    return result;
  }
  Cursor in(argument.substr(keyword.size() + 1));
  // RFC 5321 allows no space here, but many clients send "MAIL FROM: <a@b>".
  while (in.eat(' ')) {
  }
  if (!in.eat('<')) {
    result.status = PathStatus::bad_path;
    return result;
  }
  if (in.peek() == '>') {
    in.advance();
    if (!allow_null) result.status = PathStatus::bad_path;
  } else {
    if (in.peek() == '@' && !skip_source_route(in)) {
      result.status = PathStatus::bad_path;
      return result;
    }
    const std::size_t mailbox = in.pos();
    if (!parse_local_part(in)) {
      result.status = PathStatus::bad_path;
      return result;
    }
    if (in.eat('>')) {
      result.status = PathStatus::no_domain;
      return result;
    }
    if (!in.eat('@')) {
      result.status = PathStatus::bad_path;
      return result;
    }
    const std::size_t domain = in.pos();
    const bool domain_ok = in.peek() == '[' ? parse_address_literal(in) : parse_domain(in);
    result.domain = in.since(domain);
    result.mailbox = in.since(mailbox);
    if (!domain_ok || !in.eat('>')) {
      result.status = PathStatus::bad_path;
      return result;
    }
    result.non_ascii = std::any_of(result.mailbox.begin(), result.mailbox.end(), is_non_ascii);
    if (result.non_ascii && !is_valid_utf8(result.mailbox)) {
      result.status = PathStatus::bad_path;
      return result;
    }
  }
  if (result.status == PathStatus::ok && !parse_params(in, result.params))
    result.status = PathStatus::bad_syntax;
  return result;
}

}  // namespace relayq::mta
