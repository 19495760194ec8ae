// Message ids as text, and recipient states as words.
#include "queue/message.hpp"

#include <charconv>

namespace relayq::queue {

std::string format_id(MessageId id) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i) {
    text[static_cast<std::size_t>(i)] = kDigits[id & 0xF];
    id >>= 4;
  }
  return text;
}

std::optional<MessageId> parse_id(std::string_view text) {
  // from_chars alone would accept shorter input; ids are always written with 16 digits.
  if (text.size() != 16) return std::nullopt;
  MessageId id = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return id;
}

bool Envelope::has_pending() const {
  for (const auto& recipient : recipients)
    if (recipient.state == RecipientState::pending) return true;
  return false;
}

std::string_view to_string(RecipientState state) {
  switch (state) {
    case RecipientState::pending:
      return "pending";
    case RecipientState::delivered:
      return "delivered";
    case RecipientState::bounced:
      return "bounced";
  }
  return "unknown";
}

}  // namespace relayq::queue
