// Relaxed header and body canonicalization of RFC 6376 (3.4.2, 3.4.4). Any thread.
#include "dkim_canonical.hpp"

namespace relayq::policy {

namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

// Appends `text` with each run of WSP (and, in headers, the CR LF of folds) as one space,
// dropping whitespace at the end.
void append_compressed(std::string& out, std::string_view text) {
  bool space = false;
  for (const char c : text) {
    if (is_wsp(c) || c == '\r' || c == '\n') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
}

}  // namespace

std::string relaxed_header(std::string_view field) {
  const std::size_t colon = field.find(':');
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  std::string out;
  out.reserve(field.size() + 2);
  for (const char c : name) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  out += ':';
  if (colon != std::string_view::npos) {
    std::string_view value = field.substr(colon + 1);
    // Whitespace (and folds) right after the colon go, as at the end.
    while (!value.empty() &&
           (is_wsp(value.front()) || value.front() == '\r' || value.front() == '\n'))
      value.remove_prefix(1);
    append_compressed(out, value);
  }
  out += "\r\n";
  return out;
}

std::string relaxed_body(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  std::size_t empty_lines = 0;  // held back until a line with text follows them
  while (!body.empty()) {
    const std::size_t end = body.find("\r\n");
    const std::string_view line = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 2);
    std::string compressed;
    append_compressed(compressed, line);
    if (compressed.empty()) {
      ++empty_lines;
      continue;
    }
    for (; empty_lines > 0; --empty_lines) out += "\r\n";
    out += compressed;
    out += "\r\n";
  }
  return out;
}

}  // namespace relayq::policy
