// The built-in rule table and the classifier. Pure functions of a reply: any thread (delivery
// loops classify with their settings' classifier).
#include "mta/delivery/reply_category.hpp"

#include <string>
#include <utility>

#include "dns/domain_name.hpp"
#include "mta/delivery/recipient_fate.hpp"
#include "mta/smtp/client_session.hpp"

namespace relayq::mta {

namespace {

// What a rule is matched against, worked out once per reply.
struct ReplyFacts {
  std::string code;      // "550"; "0" for our own failures
  std::string enhanced;  // enhanced_status(): "5.1.1", or the class default
  std::string text;      // lower-cased
};

bool matches(const ReplyRule& rule, const ReplyFacts& facts) {
  return facts.code.starts_with(rule.code) && facts.enhanced.starts_with(rule.enhanced) &&
         facts.text.find(rule.text) != std::string::npos;
}

using C = ReplyCategory;

// The first rule that matches wins, so each group comes before the broader ones after it.
// Prefixes are textual: "5.1.1" also matches "5.1.10", hence 5.1.10's own rules before it.
std::vector<ReplyRule> make_builtin_rules() {
  return {
      // Our own failures (code 0: no connection, no reply, a timeout, TLS that could not be
      // had) are about reaching the next hop; a reply we could not parse is the server's
      // protocol fault.
      {C::protocol, "0", "", "protocol error"},
      {C::network, "0", "", ""},

      // "Slow down": a deferral that more patience fixes, first so that the policy and
      // reputation rules below, whose codes these share, do not take them. Gmail 4.7.28
      // (unusual rate from the IP), Microsoft 4.7.650 (IP rate limited) and 4.7.500 (server
      // busy), Yahoo [TSS04] (unexpected volume) and [TS01]/[TS02] (complaints), RFC 3463
      // 4.4.5 (congestion), and any 4xx that says so in words (Gmail's 4.7.0 "unusual rate",
      // 4.2.1 "receiving mail at a rate", 421 4.3.2 "too many connections").
      {C::rate_limit, "", "4.7.28", ""},
      {C::rate_limit, "", "4.7.650", ""},
      {C::rate_limit, "", "4.7.500", ""},
      {C::rate_limit, "", "4.4.5", ""},
      {C::rate_limit, "4", "", "tss04"},
      {C::rate_limit, "4", "", "ts01"},
      {C::rate_limit, "4", "", "ts02"},
      {C::rate_limit, "4", "", "rate limit"},
      {C::rate_limit, "4", "", "rate-limit"},
      {C::rate_limit, "4", "", "ratelimit"},
      {C::rate_limit, "4", "", "unusual rate"},
      {C::rate_limit, "4", "", "at a rate"},
      {C::rate_limit, "4", "", "throttl"},
      {C::rate_limit, "4", "", "too many"},
      {C::rate_limit, "4", "", "concurrent"},
      {C::rate_limit, "4", "", "slow down"},
      {C::rate_limit, "4", "", "server busy"},

      // The recipient's domain cannot take mail: NXDOMAIN (5.1.2, also what our DNS lookup
      // bounces with), null MX (5.1.10, RFC 7505), no route or no host with an address
      // (5.4.4). Microsoft sends 5.1.10 for unknown users, which it spells out.
      {C::bad_mailbox, "", "5.1.10", "recipientnotfound"},
      {C::bad_mailbox, "", "5.1.10", "recipient not found"},
      {C::bad_domain, "", "5.1.10", ""},
      {C::bad_domain, "", "5.1.2", ""},
      {C::bad_domain, "", "4.1.2", ""},
      {C::bad_domain, "", "5.4.4", ""},

      // No such mailbox (5.1.1, Gmail's "does not exist"), a bad mailbox syntax (5.1.3), moved
      // (5.1.6) or disabled (5.2.1, Gmail's "account is disabled").
      {C::bad_mailbox, "", "5.1.1", ""},
      {C::bad_mailbox, "", "4.1.1", ""},
      {C::bad_mailbox, "", "5.1.3", ""},
      {C::bad_mailbox, "", "5.1.6", ""},
      {C::bad_mailbox, "", "5.2.1", ""},

      // The receiver refuses our envelope sender's address or domain (5.1.7, 5.1.8): its rules,
      // not the recipient's mailbox.
      {C::policy, "", "5.1.7", ""},
      {C::policy, "", "5.1.8", ""},

      // Over quota, now (Gmail 452 4.2.2) or for good (552 5.2.2).
      {C::mailbox_full, "", "5.2.2", ""},
      {C::mailbox_full, "", "4.2.2", ""},

      // Too large for the receiver (5.3.4; 5.2.3 is Gmail's; 4.3.4 for now).
      {C::message_too_big, "", "5.3.4", ""},
      {C::message_too_big, "", "5.2.3", ""},
      {C::message_too_big, "", "4.3.4", ""},

      // Who we are rather than what we sent: the sending IP's or domain's standing
      // (blocklists, Microsoft's S3150 block list, banned IPs and 5.7.708/5.7.750, Yahoo's
      // [TS03]/[TSS09] permanent deferrals, Gmail's "low reputation"), and failed sender
      // authentication, RFC 7372's 5.7.20-5.7.27 (Gmail's 5.7.26 "unauthenticated", DMARC):
      // both are fixed on our side (the IP, the DNS records), not in the message, so
      // authentication counts as reputation, not policy. Before the 5.7 policy rule, since
      // Microsoft and Yahoo send these as 5.7.1 too.
      {C::reputation, "", "5.7.2", ""},
      {C::reputation, "", "4.7.2", ""},
      {C::reputation, "", "5.7.708", ""},
      {C::reputation, "", "5.7.750", ""},
      {C::reputation, "", "", "reputation"},
      {C::reputation, "", "", "s3150"},
      {C::reputation, "", "", "s3140"},
      {C::reputation, "", "", "block list"},
      {C::reputation, "", "", "blocklist"},
      {C::reputation, "", "", "blacklist"},
      {C::reputation, "", "", "spamhaus"},
      {C::reputation, "", "", "banned sending ip"},
      {C::reputation, "", "", "ts03"},
      {C::reputation, "", "", "tss09"},

      // The receiver's rules refused the message or the relay: spam, content, relay denied
      // (5.7.x, Gmail's 5.7.1 "likely unsolicited", 5.7.0 attachments), greylisting (4.7.x).
      {C::policy, "", "5.7.", ""},
      {C::policy, "", "4.7.", ""},

      // Replies without a telling enhanced code, by their words.
      {C::bad_domain, "5", "", "domain not found"},
      {C::bad_domain, "5", "", "no such domain"},
      {C::bad_domain, "5", "", "domain does not exist"},
      {C::bad_mailbox, "5", "", "user unknown"},
      {C::bad_mailbox, "5", "", "unknown user"},
      {C::bad_mailbox, "5", "", "no such user"},
      {C::bad_mailbox, "5", "", "mailbox unavailable"},
      {C::bad_mailbox, "5", "", "does not exist"},
      {C::mailbox_full, "", "", "over quota"},
      {C::mailbox_full, "", "", "quota exceeded"},
      {C::mailbox_full, "", "", "mailbox full"},
      {C::mailbox_full, "", "", "mailbox is full"},
      {C::message_too_big, "5", "", "too large"},
      {C::message_too_big, "5", "", "too big"},
      {C::policy, "", "", "spam"},
      {C::policy, "5", "", "relay"},

      // Commands or parameters the server did not take: 5.5.x, 500-504 (syntax, not
      // implemented, bad sequence); 552 is "too much mail data" when nothing above said more.
      {C::protocol, "", "5.5.", ""},
      {C::protocol, "50", "", ""},
      {C::message_too_big, "552", "", ""},

      // The server or the path to it is in trouble: routing and network status (4.4.x,
      // 5.4.x), a system not accepting mail now (4.3.x), and a plain 421 closing the
      // connection ("service shutting down").
      {C::network, "", "4.4.", ""},
      {C::network, "", "5.4.", ""},
      {C::network, "", "4.3.", ""},
      {C::network, "421", "", ""},
  };
}

}  // namespace

ReplyClassifier::ReplyClassifier(std::vector<ReplyRule> rules) : rules_(std::move(rules)) {
  // Matched against the lower-cased reply; the built-in rules are written that way.
  for (auto& rule : rules_) rule.text = dns::lower_case(rule.text);
}

ReplyCategory ReplyClassifier::classify(const SmtpReply& reply) const {
  const ReplyFacts facts{std::to_string(reply.code), enhanced_status(reply),
                         dns::lower_case(reply.text)};
  for (const auto* rules : {&rules_, &builtin_rules()})
    for (const ReplyRule& rule : *rules)
      if (matches(rule, facts)) return rule.category;
  return C::other;
}

const std::vector<ReplyRule>& ReplyClassifier::builtin_rules() {
  static const std::vector<ReplyRule> rules = make_builtin_rules();
  return rules;
}

}  // namespace relayq::mta
