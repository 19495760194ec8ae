// What kind of failure a delivery reply is: the classifier over the rule table (the config's
// [[reply_rule]]s, then the built-in ones). The categories and ReplyRule themselves are in
// mta/config/reply_rule.hpp, since the config file names them. Immutable once built: any
// thread may classify.
#pragma once

#include <vector>

#include "mta/config/reply_rule.hpp"

namespace relayq::mta {

struct SmtpReply;

class ReplyClassifier {
 public:
  ReplyClassifier() = default;  // the built-in rules alone
  // `rules` (the config's) are tried before the built-in ones; the first match wins.
  explicit ReplyClassifier(std::vector<ReplyRule> rules);

  // For a reply that is not a success. Our own failures (code 0: no connection, no reply) are
  // `network` unless a rule says otherwise.
  ReplyCategory classify(const SmtpReply& reply) const;

  static const std::vector<ReplyRule>& builtin_rules();

 private:
  std::vector<ReplyRule> rules_;  // text lower-cased
};

}  // namespace relayq::mta
