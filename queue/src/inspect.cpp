// JSON rendering of envelopes for inspection.
#include "queue/inspect.hpp"

#include <nlohmann/json.hpp>

namespace relayq::queue {

std::string envelope_to_json_line(const Envelope& envelope) {
  // ordered_json keeps the documented field order, which makes lines easy to read and diff.
  using nlohmann::ordered_json;
  ordered_json recipients = ordered_json::array();
  for (const auto& recipient : envelope.recipients) {
    recipients.push_back(ordered_json{{"address", recipient.address},
                                      {"state", to_string(recipient.state)},
                                      {"attempts", recipient.attempts},
                                      {"last_reply", recipient.last_reply},
                                      {"next_attempt_ms", recipient.next_attempt_ms}});
  }
  const ordered_json line{{"id", format_id(envelope.id)},
                          {"sender", envelope.sender},
                          {"recipients", std::move(recipients)},
                          {"received_ms", envelope.received_ms},
                          {"size", envelope.size},
                          {"listener", envelope.listener},
                          {"client_address", envelope.client_address},
                          {"helo", envelope.helo},
                          {"held", envelope.held}};
  // Peer-supplied text (HELO, addresses, replies) may hold any bytes; never throw over them.
  return line.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace relayq::queue
