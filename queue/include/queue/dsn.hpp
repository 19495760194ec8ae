// RFC 3464 delivery status notifications: the bounce ("failed") and the warning ("delayed")
// that go back to a message's sender.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "queue/message.hpp"

namespace relayq::queue {

struct DsnRecipient {
  std::string address;         // Final-Recipient (rfc822;...) and Original-Recipient
  std::string action;          // "failed" or "delayed"
  std::string status;          // enhanced status code, e.g. "5.1.1"
  std::string remote_mta;      // host name of the next hop that answered; empty if none did
  std::string diagnostic;      // the remote reply ("smtp; 550 5.1.1 ...") or our own reason
  std::int64_t last_attempt_ms = 0;
  std::int64_t will_retry_until_ms = 0;  // for "delayed": when relayq gives up (0 = omit)
};

struct DsnRequest {
  std::string reporting_mta;  // our hostname
  const Envelope* original = nullptr;
  std::string original_headers;  // the original message's header section (CRLF lines)
  std::vector<DsnRecipient> recipients;
};

// Builds the DSN as a queued message: null sender, the original sender as its one recipient,
// a multipart/report; report-type=delivery-status body (human text, message/delivery-status,
// text/rfc822-headers with the original headers), CRLF lines only and no line over 998 bytes.
// The original must not have a null sender (callers never bounce a bounce).
Message build_dsn(const DsnRequest& request, MessageId id, std::int64_t now_ms);

// The header section of a stored body (everything before the blank line), which is what a DSN
// attaches; capped at 64 KiB so that a bounce never carries a huge header block.
std::string header_section(const std::string& body);

}  // namespace relayq::queue
