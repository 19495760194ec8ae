// What one delivery reply means for one recipient: delivered, deferred to a time the retry
// policy sets, or bounced (5xx, or too old); and the DSN line a bounce or delay puts in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mta/delivery/reply_category.hpp"
#include "mta/smtp/client_session.hpp"
#include "queue/dsn.hpp"
#include "queue/message.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::mta {

enum class Fate { delivered, deferred, bounced };

struct AttemptContext {
  std::int64_t now_ms = 0;   // wall clock
  std::string nexthop;       // "host[ip]:port", empty when no connection was made
  std::string remote_host;   // for Remote-MTA in a DSN
  double unit_random = 0.5;  // [0, 1), for the retry jitter
  std::string tls;           // queue::Attempt::tls: how the connection was protected
};

// Records the attempt in the recipient (attempts, history with the reply's category unless it
// is a success, last reply) and sets its state and next attempt time, with the rule that set
// it. A 4xx (or no reply) past the rule's max_age bounces with 4.4.7.
Fate apply_reply(queue::Recipient& recipient, const SmtpReply& reply, ReplyCategory category,
                 const queue::RetryRule& rule, std::int64_t received_ms,
                 const AttemptContext& context);

// The enhanced status code of a reply ("5.1.1"), or a class default when it has none
// (5.0.0 / 4.0.0; 4.4.1 for no reply at all; 4.4.7 for an expired message).
std::string enhanced_status(const SmtpReply& reply);

// The DSN entry for a recipient after apply_reply() bounced or deferred it.
queue::DsnRecipient dsn_entry(const queue::Recipient& recipient, Fate fate, const SmtpReply& reply,
                              const AttemptContext& context, std::int64_t retry_until_ms);

}  // namespace relayq::mta
