// The admin API's JSON shapes for one message: a line of the queue listing, or the whole of it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "queue/message.hpp"

namespace relayq::mta {

using Json = nlohmann::ordered_json;

// When a recipient is next due: its next_attempt_ms, or the reception time while that is 0 (a
// first attempt), as the store's due index has it.
std::int64_t due_ms(const queue::Envelope& envelope, const queue::Recipient& recipient);

// One line of GET /v1/queue: id, age_s, sender, recipients_pending, next_attempt_ms (earliest
// pending, null when none is), last_error (the newest reply a pending recipient got, null
// before any attempt), held.
Json queue_line(const queue::Envelope& envelope, std::int64_t now_ms);

// GET /v1/queue/ID: every envelope field, and each recipient with its whole attempt history.
Json message_json(const queue::Envelope& envelope, std::int64_t now_ms);

// Compact, on one line; bytes that are not UTF-8 (peers send anything) become U+FFFD.
std::string dump(const Json& json);

// {"error": message}, the body of every failed request.
std::string error_body(const std::string& message);

}  // namespace relayq::mta
