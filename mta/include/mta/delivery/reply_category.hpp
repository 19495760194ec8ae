// What kind of failure a delivery reply is (bad mailbox, policy, rate limit, ...): a small fixed
// set of categories and the rule table (the config's [[reply_rule]]s, then the built-in ones)
// that maps a reply to one. Immutable once built: any thread may classify.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relayq::mta {

struct SmtpReply;

// Kept small and fixed: each is a label value of relayq_delivery_failures_total.
enum class ReplyCategory : std::uint8_t {
  bad_mailbox,      // no such user, mailbox disabled
  bad_domain,       // no such domain, no mail server for it
  mailbox_full,     // over quota
  message_too_big,  // over the receiver's size limit
  policy,           // refused for its content or the receiver's rules: spam, relay denied
  reputation,       // refused for the sending IP's or domain's standing: blocklists, auth
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

std::string_view to_string(ReplyCategory category);
std::optional<ReplyCategory> parse_reply_category(std::string_view name);

// One line of the table. Every condition given must hold; "" is any.
struct ReplyRule {
  ReplyCategory category = ReplyCategory::other;
  std::string code;      // a prefix of the 3-digit reply code: "421", "4", "55"
  std::string enhanced;  // a prefix of enhanced_status(): "5.1.1", "4.7."
  std::string text;      // a case-insensitive substring of the reply text
  bool operator==(const ReplyRule&) const = default;
};

class ReplyClassifier {
 public:
  ReplyClassifier() = default;
  // `rules` (the config's) are tried before the built-in ones; the first match wins.
  explicit ReplyClassifier(std::vector<ReplyRule> rules);

  // For a reply that is not a success. Our own failures (code 0: no connection, no reply) are
  // `network` unless a rule says otherwise.
  ReplyCategory classify(const SmtpReply& reply) const;

  static const std::vector<ReplyRule>& builtin_rules();

 private:
  std::vector<ReplyRule> rules_;
};

}  // namespace relayq::mta
