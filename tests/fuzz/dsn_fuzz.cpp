// libFuzzer target: build_dsn (and header_section) from an envelope and failure reports made
// of the input: NUL-separated fields (sender, the original body, then per recipient its
// address, status, remote MTA and diagnostic). Checks the promise of queue/dsn.hpp: CRLF lines
// only, none over 998 bytes, the original sender as the one recipient.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dsn_checks.hpp"
#include "fuzz_input.hpp"
#include "queue/dsn.hpp"

namespace {

std::vector<std::string> split_fields(std::string_view input) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (fields.size() < 64) {
    const std::size_t end = input.find('\0', start);
    fields.emplace_back(input.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return fields;
}

// What an envelope can hold: no CR or LF, at most 254 bytes (the server session's limits).
std::string envelope_text(std::string text) {
  std::erase_if(text, [](char c) { return c == '\r' || c == '\n'; });
  if (text.size() > 254) text.resize(254);
  return text;
}

// Stored bodies are CRLF lines: every lone CR or LF becomes CRLF.
std::string crlf_lines(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      ++i;
    } else if (text[i] == '\r' || text[i] == '\n') {
      out += "\r\n";
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace relayq;
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  auto fields = split_fields(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  fields.resize(std::max<std::size_t>(fields.size(), 2));

  queue::Envelope envelope;
  envelope.id = 0x1234;
  envelope.sender = fields[0].empty() ? "sender@x.test" : envelope_text(fields[0]);
  envelope.received_ms = 1700000000000;
  envelope.listener = "127.0.0.1:25";
  envelope.client_address = "192.0.2.1";
  envelope.helo = "client.test";
  const std::string body = crlf_lines(fields[1]);

  queue::DsnRequest request;
  request.reporting_mta = "mx.fuzz.test";
  request.original = &envelope;
  request.original_headers = queue::header_section(body);
  if (request.original_headers.size() > 65536) fuzz::fail("header_section over 64 KiB");
  for (std::size_t i = 2; i < fields.size(); i += 4) {
    auto field = [&](std::size_t k) {
      return i + k < fields.size() ? fields[i + k] : std::string();
    };
    queue::DsnRecipient recipient;
    recipient.address = envelope_text(field(0));
    recipient.action = (flags & 0x01) ? "delayed" : "failed";
    recipient.status = envelope_text(field(1)).substr(0, 16);
    recipient.remote_mta = envelope_text(field(2));
    recipient.diagnostic = field(3);
    recipient.last_attempt_ms = (flags & 0x02) ? 1700000100000 : 0;
    recipient.will_retry_until_ms = (flags & 0x04) ? 1700500000000 : 0;
    queue::Recipient original;
    original.address = recipient.address;
    envelope.recipients.push_back(std::move(original));
    request.recipients.push_back(std::move(recipient));
  }
  if (request.recipients.empty()) return 0;

  queue::Message dsn;
  try {
    dsn = queue::build_dsn(request, 0x5678, 1700000200000);
  } catch (const std::invalid_argument&) {
    return 0;  // documented for a null original sender
  }
  fuzz::check_dsn(dsn);
  return 0;
}
