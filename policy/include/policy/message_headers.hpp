// Reading the header block of a stored message (CRLF lines, dot-unstuffed, header block, blank
// line, body): its fields, the RFC 5322.From domains DMARC needs, and removing forged
// Authentication-Results. Pure functions on text; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace relayq::policy {

struct HeaderField {
  std::string_view name;   // as written ("fROM"), without the ':' or whitespace before it
  std::string_view value;  // everything after the ':', raw and still folded, without the CRLF
  std::size_t offset = 0;  // where the field starts in the message
  std::size_t length = 0;  // the whole field, continuation lines and the final CRLF included
};

// The header block's fields in order, up to the empty line (or the whole text when there is
// none). Views into `message`. A line that is not a field (no ':', or a name with a space or a
// control character in it) is skipped rather than taken as the end of the header block: readers
// disagree about such lines, and a From: hidden after one must still be seen.
std::vector<HeaderField> header_fields(std::string_view message);

// The domains of the RFC 5322.From addresses, lower-case (ASCII; U-labels are left as they are),
// from every From: field in order: display names, quoted strings, comments, angle brackets,
// source routes, groups and several addresses are understood. An address without '@' gives
// nothing. DMARC needs exactly one: return everything found and let the caller decide.
std::vector<std::string> from_domains(std::string_view message);

// Removes, in place, the Authentication-Results fields whose authserv-id (RFC 8601 2.2: the
// first token of the value, after any CFWS, before a version, ';' or comment) equals
// `authserv_id`, compared case-insensitively: RFC 8601 section 5, results claiming to be ours
// that arrive from outside are forged. Only the header block is touched; an empty `authserv_id`
// matches nothing. Returns how many were removed; a message without any is not copied.
std::size_t remove_authentication_results(std::string& message, std::string_view authserv_id);

}  // namespace relayq::policy
