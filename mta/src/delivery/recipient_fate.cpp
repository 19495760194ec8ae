// The fate of a recipient after a delivery reply, and its DSN entry.
#include "mta/delivery/recipient_fate.hpp"

#include <cctype>

namespace relayq::mta {

namespace {

// "550 5.1.1 no such user" -> "5.1.1" when the text carries an RFC 3463 code of the
// reply's class; empty otherwise.
std::string code_in_text(const SmtpReply& reply) {
  const std::string& text = reply.text;
  // The text may start with the reply code itself ("550 5.1.1 ...").
  const bool has_code = text.size() > 4 && std::isdigit(static_cast<unsigned char>(text[0])) &&
                        std::isdigit(static_cast<unsigned char>(text[1])) &&
                        std::isdigit(static_cast<unsigned char>(text[2])) &&
                        (text[3] == ' ' || text[3] == '-');
  const std::size_t start = has_code ? 4 : 0;
  const std::size_t end = text.find_first_of(" \n", start);
  const std::string candidate = text.substr(start, end == std::string::npos ? end : end - start);
  const auto dot1 = candidate.find('.');
  const auto dot2 = dot1 == std::string::npos ? dot1 : candidate.find('.', dot1 + 1);
  if (dot1 != 1 || dot2 == std::string::npos || dot2 + 1 >= candidate.size()) return {};
  if (candidate[0] != static_cast<char>('0' + reply.code / 100)) return {};
  const bool digits = std::all_of(candidate.begin(), candidate.end(), [](char c) {
    return c == '.' || std::isdigit(static_cast<unsigned char>(c));
  });
  return digits ? candidate : std::string();
}

}  // namespace

std::string enhanced_status(const SmtpReply& reply) {
  if (reply.code == 0) return "4.4.1";
  if (auto code = code_in_text(reply); !code.empty()) return code;
  if (reply.code >= 500) return "5.0.0";
  if (reply.code >= 400) return "4.0.0";
  return "2.0.0";
}

Fate apply_reply(queue::Recipient& recipient, const SmtpReply& reply, ReplyCategory category,
                 const queue::RetryRule& rule, std::int64_t received_ms,
                 const AttemptContext& context) {
  const queue::RetryPolicy& policy = rule.policy;
  ++recipient.attempts;
  recipient.last_reply = reply.text;
  recipient.history.push_back({context.now_ms, context.nexthop, reply.text, context.tls,
                               reply.success() ? "" : std::string(to_string(category))});
  if (reply.success()) {
    recipient.state = queue::RecipientState::delivered;
    return Fate::delivered;
  }
  if (reply.permanent()) {
    recipient.state = queue::RecipientState::bounced;
    return Fate::bounced;
  }
  const std::int64_t expires = received_ms + policy.max_age.count();
  if (context.now_ms >= expires) {
    recipient.state = queue::RecipientState::bounced;
    return Fate::bounced;
  }
  // The last try falls on max_age itself, so that a message is given its whole lifetime.
  const auto delay = queue::retry_delay(policy, recipient.attempts, context.unit_random);
  recipient.next_attempt_ms = std::min(context.now_ms + delay.count(), expires);
  recipient.retry_rule = rule.domain;
  return Fate::deferred;
}

queue::DsnRecipient dsn_entry(const queue::Recipient& recipient, Fate fate, const SmtpReply& reply,
                              const AttemptContext& context, std::int64_t retry_until_ms) {
  queue::DsnRecipient entry;
  entry.address = recipient.address;
  entry.remote_mta = context.remote_host;
  entry.last_attempt_ms = context.now_ms;
  if (fate == Fate::deferred) {
    entry.action = "delayed";
    entry.status = enhanced_status(reply);
    entry.will_retry_until_ms = retry_until_ms;
  } else {
    entry.action = "failed";
    // A temporary failure that ran out of time is reported as "expired" (4.4.7 -> 5.4.7).
    entry.status = reply.permanent() ? enhanced_status(reply) : "5.4.7";
  }
  // Replies from a server carry their code; our own reasons (DNS, connection) do not.
  const bool from_server = reply.code != 0 && reply.text.rfind(std::to_string(reply.code), 0) == 0;
  entry.diagnostic = (from_server ? "smtp; " : "X-relayq; ") + reply.text;
  return entry;
}

}  // namespace relayq::mta
