// The message content as it goes out after DATA: dot-stuffed, every line ended by CRLF, and
// terminated by CRLF.CRLF, whatever line endings the stored body has.
#pragma once

#include <string>
#include <string_view>

namespace relayq::mta {

// Appends `body` to `out` with each CRLF, bare LF and bare CR turned into CRLF, a "." doubled
// at the start of every line (RFC 5321 4.5.2), a CRLF added after an unended last line, and
// the ".\r\n" terminator. Nothing in `body` can end the DATA early (no smuggling outbound).
void append_dot_stuffed(std::string_view body, std::string& out);

}  // namespace relayq::mta
