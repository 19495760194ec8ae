// The admin API's JSON shapes for one message.
#include "mta/admin/json.hpp"

#include <algorithm>
#include <chrono>

namespace relayq::mta {

namespace {

double age_seconds(const queue::Envelope& envelope, std::int64_t now_ms) {
  return static_cast<double>(std::max<std::int64_t>(0, now_ms - envelope.received_ms)) / 1000.0;
}

Json attempt_json(const queue::Attempt& attempt) {
  Json json{{"time_ms", attempt.time_ms},
            {"nexthop", attempt.nexthop},
            {"reply", attempt.reply},
            {"tls", attempt.tls}};
  // Failed attempts only: a success has none, nor has an attempt recorded before categories.
  if (!attempt.category.empty()) json["category"] = attempt.category;
  return json;
}

// The retry rule that set a pending recipient's next attempt: "default" or the override's domain.
// Null when no rule did: before the first attempt, or after `queue retry` made it due now.
Json retry_rule_json(const queue::Recipient& recipient) {
  if (recipient.state != queue::RecipientState::pending || recipient.next_attempt_ms == 0)
    return Json();
  return recipient.retry_rule.empty() ? "default" : recipient.retry_rule;
}

Json recipient_json(const queue::Envelope& envelope, const queue::Recipient& recipient) {
  Json history = Json::array();
  for (const auto& attempt : recipient.history) history.push_back(attempt_json(attempt));
  const bool pending = recipient.state == queue::RecipientState::pending;
  return Json{{"address", recipient.address},
              {"state", queue::to_string(recipient.state)},
              {"attempts", recipient.attempts},
              {"last_reply", recipient.last_reply},
              {"next_attempt_ms", pending ? Json(due_ms(envelope, recipient)) : Json()},
              {"retry_rule", retry_rule_json(recipient)},
              {"history", std::move(history)}};
}

}  // namespace

std::int64_t due_ms(const queue::Envelope& envelope, const queue::Recipient& recipient) {
  return recipient.next_attempt_ms == 0 ? envelope.received_ms : recipient.next_attempt_ms;
}

Json queue_line(const queue::Envelope& envelope, std::int64_t now_ms) {
  Json pending = Json::array();
  Json next_attempt;
  Json last_error;
  Json last_category;  // of last_error's attempt, when it has one
  std::int64_t last_error_time = -1;
  for (const auto& recipient : envelope.recipients) {
    if (recipient.state != queue::RecipientState::pending) continue;
    pending.push_back(recipient.address);
    const auto due = due_ms(envelope, recipient);
    if (next_attempt.is_null() || due < next_attempt.get<std::int64_t>()) next_attempt = due;
    // The newest attempt among the pending recipients tells what is holding the message up.
    const auto time = recipient.history.empty() ? 0 : recipient.history.back().time_ms;
    if (!recipient.last_reply.empty() && time > last_error_time) {
      last_error = recipient.last_reply;
      last_error_time = time;
      const bool classified =
          !recipient.history.empty() && !recipient.history.back().category.empty();
      last_category = classified ? Json(recipient.history.back().category) : Json();
    }
  }
  return Json{{"id", queue::format_id(envelope.id)},
              {"age_s", age_seconds(envelope, now_ms)},
              {"sender", envelope.sender},
              {"recipients_pending", std::move(pending)},
              {"next_attempt_ms", std::move(next_attempt)},
              {"last_error", std::move(last_error)},
              {"last_category", std::move(last_category)},
              {"held", envelope.held}};
}

Json message_json(const queue::Envelope& envelope, std::int64_t now_ms) {
  Json recipients = Json::array();
  for (const auto& recipient : envelope.recipients) {
    recipients.push_back(recipient_json(envelope, recipient));
  }
  return Json{{"id", queue::format_id(envelope.id)},
              {"sender", envelope.sender},
              {"received_ms", envelope.received_ms},
              {"age_s", age_seconds(envelope, now_ms)},
              {"size", envelope.size},
              {"listener", envelope.listener},
              {"client_address", envelope.client_address},
              {"helo", envelope.helo},
              {"eight_bit_mime", envelope.eight_bit_mime},
              {"smtputf8", envelope.smtputf8},
              {"held", envelope.held},
              {"delay_warned", envelope.delay_warned},
              {"recipients", std::move(recipients)}};
}

std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string error_body(const std::string& message) {
  return dump(Json{{"error", message}});
}

}  // namespace relayq::mta
