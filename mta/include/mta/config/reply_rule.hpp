// The reply categories (bad mailbox, policy, rate limit, ...) and one line of the rule table
// that maps failure replies to them: what [[reply_rule]] in the config file is read into, and
// what mta/delivery/reply_category.hpp classifies with. Plain values, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relayq::mta {

// Kept small and fixed: each is a label value of relayq_delivery_failures_total.
enum class ReplyCategory : std::uint8_t {
  bad_mailbox,      // no such user, mailbox disabled
  bad_domain,       // no such domain, no mail server for it
  mailbox_full,     // over quota
  message_too_big,  // over the receiver's size limit
  policy,           // refused for its content or the receiver's rules: spam, relay denied
  reputation,       // refused for the sender's standing or authentication: blocklists, DMARC
  rate_limit,       // "slow down": too many connections, messages or recipients now
  protocol,         // a command or syntax the receiver did not accept
  network,          // no connection, no reply, timeouts, DNS trouble, a server going away
  other,            // no rule matched
};

inline constexpr std::array kReplyCategories = {
    ReplyCategory::bad_mailbox,     ReplyCategory::bad_domain, ReplyCategory::mailbox_full,
    ReplyCategory::message_too_big, ReplyCategory::policy,     ReplyCategory::reputation,
    ReplyCategory::rate_limit,      ReplyCategory::protocol,   ReplyCategory::network,
    ReplyCategory::other,
};

// The snake_case name, as in the config file, logs, metrics and `relayq queue show`.
std::string_view to_string(ReplyCategory category);
std::optional<ReplyCategory> parse_reply_category(std::string_view name);

// One line of the table. Every condition given must hold; "" is any.
struct ReplyRule {
  ReplyCategory category = ReplyCategory::other;
  std::string code;      // a prefix of the 3-digit reply code ("421", "4", "55"); "0": no reply
  std::string enhanced;  // a prefix of enhanced_status(): "5.1.1", "4.7."
  std::string text;      // a case-insensitive substring of the reply text
  bool operator==(const ReplyRule&) const = default;
};

}  // namespace relayq::mta
