// The header block of a stored message: fields, From: domains, removing forged
// Authentication-Results. Pure functions on text; any thread.
#include "policy/message_headers.hpp"

#include <optional>

#include "dns/domain_name.hpp"

namespace relayq::policy {
namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}
// Inside a folded value the CRLFs of the folds are whitespace too.
bool is_fws(char c) {
  return is_wsp(c) || c == '\r' || c == '\n';
}

// RFC 5322 ftext: printable ASCII but ':'.
bool is_name_char(char c) {
  return c >= 33 && c <= 126 && c != ':';
}

// Where the ':' of a field's first line is: after a name of ftext and, in the obsolete syntax
// (RFC 5322 4.5.8) still sent by some, whitespace. nullopt when the line is not a field.
std::optional<std::size_t> colon_of(std::string_view line, std::size_t* name_length) {
  std::size_t i = 0;
  while (i < line.size() && is_name_char(line[i])) ++i;
  *name_length = i;
  while (i < line.size() && is_wsp(line[i])) ++i;
  if (*name_length == 0 || i == line.size() || line[i] != ':') return std::nullopt;
  return i;
}

// The index after a delimited run that starts at `open` ('"' or '['): backslash quotes the next
// character (RFC 5322 quoted-pair); an unclosed run ends with the text. The content, unquoted,
// goes to *content.
std::size_t skip_delimited(std::string_view text, std::size_t open, char close,
                           std::string* content) {
  std::size_t i = open + 1;
  while (i < text.size() && text[i] != close) {
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    content->push_back(text[i]);
    ++i;
  }
  return i < text.size() ? i + 1 : i;
}

// The index after the comment that opens at `open`: comments nest (RFC 5322 3.2.2).
std::size_t skip_comment(std::string_view text, std::size_t open) {
  int depth = 0;
  std::size_t i = open;
  for (; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '(') {
      ++depth;
    } else if (text[i] == ')' && --depth == 0) {
      return i + 1;
    }
  }
  return text.size();
}

// The address-list grammar as tokens, comments and whitespace dropped: what is left of
// RFC 5322's display names, quoted local parts, domain literals and their punctuation.
struct Token {
  enum class Kind { word, quoted, literal, special } kind;
  std::string text;  // a word (dot-atoms stay one word), the unquoted content, or the special
};

bool is_special(char c) {
  return c == '<' || c == '>' || c == ',' || c == ':' || c == ';' || c == '@';
}

std::vector<Token> address_tokens(std::string_view value) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (is_fws(c)) {
      ++i;
    } else if (c == '(') {
      i = skip_comment(value, i);
    } else if (c == '"' || c == '[') {
      Token token{c == '"' ? Token::Kind::quoted : Token::Kind::literal, {}};
      i = skip_delimited(value, i, c == '"' ? '"' : ']', &token.text);
      if (token.kind == Token::Kind::literal) token.text = "[" + token.text + "]";
      tokens.push_back(std::move(token));
    } else if (is_special(c)) {
      tokens.push_back({Token::Kind::special, std::string(1, c)});
      ++i;
    } else {
      const std::size_t start = i;
      while (i < value.size() && !is_fws(value[i]) && !is_special(value[i]) && value[i] != '(' &&
             value[i] != '"' && value[i] != '[')
        ++i;
      tokens.push_back({Token::Kind::word, std::string(value.substr(start, i - start))});
    }
  }
  return tokens;
}

bool is(const Token& token, char special) {
  return token.kind == Token::Kind::special && token.text[0] == special;
}

// The domain of one address's tokens: what follows its last '@' outside quotes (so a source
// route "@relay:user@domain" or a quoted "a@b" local part does not mislead). CFWS between the
// labels (obs-domain) is already gone.
void add_domain(const std::vector<Token>& address, std::vector<std::string>& domains) {
  std::size_t at = address.size();
  for (std::size_t i = 0; i < address.size(); ++i)
    if (is(address[i], '@')) at = i;
  if (at == address.size()) return;
  std::string domain;
  for (std::size_t i = at + 1; i < address.size(); ++i)
    if (address[i].kind != Token::Kind::special) domain += address[i].text;
  if (!domain.empty()) domains.push_back(dns::lower_case(domain));
}

// An address list: mailboxes separated by ',', groups opened by ':' and closed by ';'. In a
// mailbox with angle brackets only what they hold is the address (the rest is display name);
// every bracketed address counts, so that "<a@x> <b@y>" cannot show one and hide the other.
void add_domains(std::string_view value, std::vector<std::string>& domains) {
  std::vector<Token> mailbox;  // outside the brackets
  std::vector<Token> bracketed;
  bool in_brackets = false;
  bool had_brackets = false;
  for (auto& token : address_tokens(value)) {
    if (in_brackets) {
      if (is(token, '>')) {
        add_domain(bracketed, domains);
        in_brackets = false;
      } else {
        bracketed.push_back(std::move(token));
      }
    } else if (is(token, '<')) {
      in_brackets = had_brackets = true;
      bracketed.clear();
    } else if (is(token, ',') || is(token, ':') || is(token, ';')) {
      if (!had_brackets) add_domain(mailbox, domains);
      mailbox.clear();
      had_brackets = false;
    } else {
      mailbox.push_back(std::move(token));
    }
  }
  if (in_brackets) {
    add_domain(bracketed, domains);
  } else if (!had_brackets) {
    add_domain(mailbox, domains);
  }
}

// RFC 8601 2.2: authserv-id is a value (token or quoted-string) after optional CFWS.
std::string authserv_id_of(std::string_view value) {
  std::size_t i = 0;
  while (i < value.size() && (is_fws(value[i]) || value[i] == '(')) {
    i = value[i] == '(' ? skip_comment(value, i) : i + 1;
  }
  std::string id;
  if (i < value.size() && value[i] == '"') {
    skip_delimited(value, i, '"', &id);
    return id;
  }
  while (i < value.size() && !is_fws(value[i]) && value[i] != ';' && value[i] != '(') {
    id.push_back(value[i++]);
  }
  return id;
}

}  // namespace

std::vector<HeaderField> header_fields(std::string_view message) {
  std::vector<HeaderField> fields;
  bool continues_field = false;  // whether a continuation line belongs to fields.back()
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t newline = message.find('\n', pos);
    const std::size_t next = newline == std::string_view::npos ? message.size() : newline + 1;
    std::string_view line = message.substr(pos, next - pos);
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;
    std::size_t name_length = 0;
    if (is_wsp(line[0])) {
      if (continues_field) {
        HeaderField& field = fields.back();
        const std::size_t value_start =
            static_cast<std::size_t>(field.value.data() - message.data());
        field.value = message.substr(value_start, pos + line.size() - value_start);
        field.length = next - field.offset;
      }
    } else if (const auto colon = colon_of(line, &name_length)) {
      fields.push_back({line.substr(0, name_length), line.substr(*colon + 1), pos, next - pos});
      continues_field = true;
    } else {
      continues_field = false;
    }
    pos = next;
  }
  return fields;
}

std::vector<std::string> from_domains(std::string_view message) {
  std::vector<std::string> domains;
  for (const auto& field : header_fields(message))
    if (dns::same_name(field.name, "from")) add_domains(field.value, domains);
  return domains;
}

std::size_t remove_authentication_results(std::string& message, std::string_view authserv_id) {
  if (authserv_id.empty()) return 0;
  std::vector<HeaderField> forged;
  for (const auto& field : header_fields(message)) {
    if (dns::same_name(field.name, "authentication-results") &&
        dns::same_name(authserv_id_of(field.value), authserv_id))
      forged.push_back(field);
  }
  // From the last, so that the offsets of the others still hold.
  for (auto field = forged.rbegin(); field != forged.rend(); ++field)
    message.erase(field->offset, field->length);
  return forged.size();
}

}  // namespace relayq::policy
