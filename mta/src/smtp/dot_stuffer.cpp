// Dot-stuffing and line ending normalisation of outbound content, line by line with memchr,
// into one buffer reserved up front.
#include "mta/smtp/dot_stuffer.hpp"

#include <cstring>

namespace relayq::mta {

namespace {

const char* find(const char* from, const char* end, char c) {
  return static_cast<const char*>(std::memchr(from, c, static_cast<std::size_t>(end - from)));
}

}  // namespace

void append_dot_stuffed(std::string_view body, std::string& out) {
  // Room for the terminator and for the odd stuffed dot or normalised ending; more only grows
  // the string in bodies full of them.
  out.reserve(out.size() + body.size() + body.size() / 32 + 8);
  const char* p = body.data();
  const char* const end = p + body.size();
  // The next LF at or after p: kept between lines, so that bare CRs never make us scan the
  // same bytes for it again.
  const char* lf = find(p, end, '\n');
  while (p < end) {
    if (*p == '.') out.push_back('.');
    if (lf != nullptr && lf < p) lf = find(p, end, '\n');
    const char* line_end = lf != nullptr ? lf : end;
    const char* cr = find(p, line_end, '\r');
    const char* next = nullptr;
    if (cr != nullptr) {
      // CRLF, or a bare CR that ends the line here.
      next = cr + 1 == lf ? lf + 1 : cr + 1;
      line_end = cr;
    } else {
      next = lf != nullptr ? lf + 1 : end;
    }
    out.append(p, line_end);
    out.append("\r\n");
    p = next;
  }
  out.append(".\r\n");
}

}  // namespace relayq::mta
