// Envelopes as JSON lines, for `relayq inspect-queue` and tests (keeps nlohmann out of headers).
#pragma once

#include <string>

#include "queue/message.hpp"

namespace relayq::queue {

// One compact JSON object on one line (no trailing newline):
// {"id","sender","recipients":[{"address","state","attempts","last_reply","next_attempt_ms"}],
//  "received_ms","size","listener","client_address","helo","held"}.
// The id is its 16-digit hex form and the state its word; bytes that are not UTF-8 are shown
// as U+FFFD.
std::string envelope_to_json_line(const Envelope& envelope);

}  // namespace relayq::queue
