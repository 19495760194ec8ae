// The promises of queue/dsn.hpp that a built DSN must keep, checked by the fuzz targets that
// build one (dsn_fuzz from made-up reports, queue_record_fuzz from stored records).
#pragma once

#include <cstddef>
#include <string>

#include "fuzz_input.hpp"
#include "queue/message.hpp"

namespace relayq::fuzz {

// Null sender, the original sender as its one recipient, CRLF lines only, none over 998 bytes.
inline void check_dsn(const queue::Message& dsn) {
  if (dsn.envelope.recipients.size() != 1) fail("a DSN not to exactly one recipient");
  if (!dsn.envelope.sender.empty()) fail("a DSN with a sender");
  const std::string& text = dsn.body;
  std::size_t line_start = 0;
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] == '\n' && (pos == 0 || text[pos - 1] != '\r')) fail("a bare LF in a DSN");
    if (text[pos] == '\r' && (pos + 1 >= text.size() || text[pos + 1] != '\n'))
      fail("a bare CR in a DSN");
    if (text[pos] == '\n') {
      if (pos - line_start - 1 > 998) fail("a DSN line over 998 bytes");
      line_start = pos + 1;
    }
  }
  if (line_start != text.size()) fail("a DSN not ending with CRLF");
}

}  // namespace relayq::fuzz
