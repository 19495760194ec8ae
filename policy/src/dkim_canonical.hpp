// DKIM's "relaxed" canonicalization (RFC 6376 3.4.2 and 3.4.4), which relayq's signer hashes.
// Pure functions on text; any thread.
#pragma once

#include <string>
#include <string_view>

namespace relayq::policy {

// One header field (name, ':', value with its folds, without the final CRLF) as relaxed
// canonicalization has it: the name lower-cased, the value unfolded, runs of whitespace one
// space, none around the ':' or at the end; with CRLF appended.
std::string relaxed_header(std::string_view field);

// A body as relaxed canonicalization has it: runs of whitespace in a line one space, none at
// a line's end, no empty lines at the end; CRLF after the last line; empty stays empty.
std::string relaxed_body(std::string_view body);

}  // namespace relayq::policy
