// The names of the reply categories. Pure functions, any thread.
#include "mta/config/reply_rule.hpp"

namespace relayq::mta {

std::string_view to_string(ReplyCategory category) {
  switch (category) {
    case ReplyCategory::bad_mailbox:
      return "bad_mailbox";
    case ReplyCategory::bad_domain:
      return "bad_domain";
    case ReplyCategory::mailbox_full:
      return "mailbox_full";
    case ReplyCategory::message_too_big:
      return "message_too_big";
    case ReplyCategory::policy:
      return "policy";
    case ReplyCategory::reputation:
      return "reputation";
    case ReplyCategory::rate_limit:
      return "rate_limit";
    case ReplyCategory::protocol:
      return "protocol";
    case ReplyCategory::network:
      return "network";
    case ReplyCategory::other:
      return "other";
  }
  return "other";
}

std::optional<ReplyCategory> parse_reply_category(std::string_view name) {
  for (const ReplyCategory category : kReplyCategories)
    if (to_string(category) == name) return category;
  return std::nullopt;
}

}  // namespace relayq::mta
