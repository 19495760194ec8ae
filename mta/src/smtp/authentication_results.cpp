// Formats the Authentication-Results: header of RFC 8601. The session's thread or any other; no
// state.
#include "mta/smtp/authentication_results.hpp"

namespace relayq::mta {

namespace {

// RFC 2045's token characters plus '@' and '.', which a bare local@domain pvalue uses
// (RFC 8601 2.2); anything else (spaces, quotes, parentheses, semicolons) is quoted.
bool is_bare_value(std::string_view value) {
  if (value.empty()) return false;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    if (std::string_view("()<>,;:\\\"/[]?=").find(c) != std::string_view::npos) return false;
  }
  return true;
}

void append_quoted(std::string& out, std::string_view value) {
  out += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  out += '"';
}

void append_comment(std::string& out, std::string_view text) {
  out += " (";
  for (const char c : text) {
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  out += ')';
}

}  // namespace

std::string format_authentication_results(std::string_view authserv_id,
                                          const std::vector<AuthResult>& results) {
  std::string out = "Authentication-Results: ";
  out += authserv_id;
  if (results.empty()) return out + "; none\r\n";
  for (const AuthResult& result : results) {
    out += ";\r\n\t";
    out += result.method;
    out += '=';
    out += result.result;
    if (!result.comment.empty()) append_comment(out, result.comment);
    for (const auto& [name, value] : result.properties) {
      out += ' ';
      out += name;
      out += '=';
      if (is_bare_value(value)) {
        out += value;
      } else {
        append_quoted(out, value);
      }
    }
  }
  return out + "\r\n";
}

}  // namespace relayq::mta
