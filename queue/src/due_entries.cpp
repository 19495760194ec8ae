// The rule that decides which recipients of an envelope the due index holds, and when.
#include "queue/store.hpp"

namespace relayq::queue {

std::vector<DueEntry> due_entries(const Envelope& envelope) {
  std::vector<DueEntry> entries;
  // A held message waits for an operator, not for a time: nothing of it is due.
  if (envelope.held) return entries;
  for (std::size_t r = 0; r < envelope.recipients.size(); ++r) {
    const Recipient& recipient = envelope.recipients[r];
    if (recipient.state != RecipientState::pending) continue;
    // A recipient never tried yet is due from the moment the message arrived.
    const std::int64_t due =
        recipient.next_attempt_ms != 0 ? recipient.next_attempt_ms : envelope.received_ms;
    entries.push_back({due, envelope.id, static_cast<std::uint16_t>(r)});
  }
  return entries;
}

}  // namespace relayq::queue
