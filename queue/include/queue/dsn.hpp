// RFC 3464 delivery status notifications: the bounce ("failed") and the warning ("delayed")
// that go back to a message's sender.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "queue/message.hpp"

namespace relayq::queue {

struct DsnRecipient {
  std::string address;     // Final-Recipient (rfc822;...)
  std::string action;      // "failed" or "delayed"
  std::string status;      // enhanced status code, e.g. "5.1.1"; empty = 5.0.0 or 4.0.0
  std::string remote_mta;  // host name (no [ip] or port) of the next hop that answered; or ""
  // The Diagnostic-Code: its type, ';' and the text: "smtp; " and the remote reply as received
  // (several lines are joined into one), or "X-relayq; " and our own reason. Text without a
  // "type;" is taken as "smtp". Empty omits the field.
  std::string diagnostic;
  std::int64_t last_attempt_ms = 0;      // Last-Attempt-Date (0 = omit: never attempted)
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
// The subject says "failed" when any recipient failed, "delayed" when all are delayed.
// The original must be given and must not have a null sender (callers never bounce a
// bounce): std::invalid_argument otherwise.
Message build_dsn(const DsnRequest& request, MessageId id, std::int64_t now_ms);

// The header section of a stored body (its lines before the blank line, each with its CRLF),
// which is what a DSN attaches; capped at 64 KiB, cut after a whole line, so that a bounce
// never carries a huge header block.
std::string header_section(const std::string& body);

}  // namespace relayq::queue
