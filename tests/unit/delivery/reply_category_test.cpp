// The reply categories: their names, the built-in rule table on the big providers' replies and
// on our own failures, and the config's rules tried first.
#include <catch2/catch.hpp>

#include "dns/domain_name.hpp"
#include "mta/delivery/reply_category.hpp"
#include "mta/smtp/client_session.hpp"

using relayq::mta::kReplyCategories;
using relayq::mta::parse_reply_category;
using relayq::mta::ReplyCategory;
using relayq::mta::ReplyClassifier;
using relayq::mta::ReplyRule;
using relayq::mta::SmtpReply;

namespace {

ReplyCategory builtin(int code, const char* text) {
  static const ReplyClassifier classifier;
  return classifier.classify(SmtpReply{code, text});
}

}  // namespace

TEST_CASE("reply category names go both ways", "[delivery][category]") {
  for (const ReplyCategory category : kReplyCategories)
    CHECK(parse_reply_category(to_string(category)) == category);
  CHECK(to_string(ReplyCategory::rate_limit) == "rate_limit");
  CHECK(to_string(ReplyCategory::bad_mailbox) == "bad_mailbox");
  CHECK_FALSE(parse_reply_category("Rate_Limit"));
  CHECK_FALSE(parse_reply_category(""));
}

TEST_CASE("our own failures are network trouble, DNS bounces bad domains", "[delivery][category]") {
  CHECK(builtin(0, "connect to mx.example[192.0.2.1]:25: connection refused") ==
        ReplyCategory::network);
  CHECK(builtin(0, "timeout waiting for the greeting") == ReplyCategory::network);
  CHECK(builtin(0, "TLS required, but the server does not offer STARTTLS") ==
        ReplyCategory::network);
  CHECK(builtin(0, "protocol error: unexpected reply \"hello\"") == ReplyCategory::protocol);
  // What destinations.cpp's dns_reply() makes of the resolver's answers.
  CHECK(builtin(451, "4.4.3 DNS lookup failed: SERVFAIL") == ReplyCategory::network);
  CHECK(builtin(550, "5.1.2 domain does not exist: NXDOMAIN") == ReplyCategory::bad_domain);
  CHECK(builtin(550, "5.4.4 no MX host has an address: none") == ReplyCategory::bad_domain);
  CHECK(builtin(550, "5.1.10 domain x.test accepts no mail (null MX, RFC 7505)") ==
        ReplyCategory::bad_domain);
}

TEST_CASE("Gmail's replies", "[delivery][category]") {
  CHECK(builtin(421,
                "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited\n"
                "421-4.7.28 mail originating from your IP address.") == ReplyCategory::rate_limit);
  CHECK(builtin(421,
                "421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of\n"
                "421-4.7.0 unsolicited mail originating from your IP address.") ==
        ReplyCategory::rate_limit);
  CHECK(builtin(450,
                "450-4.2.1 The user you are trying to contact is receiving mail at a rate "
                "that\n450 4.2.1 prevents additional messages from being delivered.") ==
        ReplyCategory::rate_limit);
  CHECK(builtin(550, "550-5.1.1 The email account that you tried to reach does not exist.") ==
        ReplyCategory::bad_mailbox);
  CHECK(builtin(550, "550-5.2.1 The email account that you tried to reach is disabled.") ==
        ReplyCategory::bad_mailbox);
  CHECK(builtin(452, "452-4.2.2 The email account that you tried to reach is over quota.") ==
        ReplyCategory::mailbox_full);
  CHECK(builtin(552, "552-5.2.2 The email account that you tried to reach is over quota.") ==
        ReplyCategory::mailbox_full);
  CHECK(builtin(552, "552-5.2.3 Your message exceeded Google's message size limits.") ==
        ReplyCategory::message_too_big);
  CHECK(builtin(550,
                "550-5.7.1 Our system has detected that this message is likely "
                "unsolicited mail.") == ReplyCategory::policy);
  // Failed authentication counts as reputation: the fix is our DNS records, not the message.
  CHECK(builtin(550,
                "550-5.7.26 This mail has been blocked because the sender is "
                "unauthenticated.") == ReplyCategory::reputation);
  CHECK(builtin(550,
                "550-5.7.26 Unauthenticated email from example.com is not accepted due "
                "to domain's DMARC policy.") == ReplyCategory::reputation);
  CHECK(builtin(421,
                "421-4.7.0 This message is suspicious due to the very low reputation of "
                "the sending IP address.") == ReplyCategory::reputation);
}

TEST_CASE("Microsoft's replies", "[delivery][category]") {
  CHECK(builtin(451,
                "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate "
                "limited due to IP reputation.") == ReplyCategory::rate_limit);
  CHECK(builtin(451, "451 4.7.500 Server busy. Please try again later from [192.0.2.1].") ==
        ReplyCategory::rate_limit);
  CHECK(builtin(550,
                "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please "
                "contact your Internet service provider since part of their network is "
                "on our block list (S3150).") == ReplyCategory::reputation);
  CHECK(builtin(550,
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from "
                "this IP.") == ReplyCategory::reputation);
  CHECK(builtin(550,
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
                "address lookup") == ReplyCategory::bad_mailbox);
}

TEST_CASE("Yahoo's replies", "[delivery][category]") {
  CHECK(builtin(421,
                "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
                "unexpected volume or user complaints") == ReplyCategory::rate_limit);
  CHECK(builtin(421,
                "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to "
                "user complaints") == ReplyCategory::rate_limit);
  CHECK(builtin(554,
                "554 5.7.9 [TS03] All messages from 192.0.2.1 will be permanently "
                "deferred; Retrying will NOT succeed.") == ReplyCategory::reputation);
  CHECK(builtin(553,
                "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because "
                "the ip is in Spamhaus's list") == ReplyCategory::reputation);
}

TEST_CASE("generic codes: size, protocol, network and the plain 421", "[delivery][category]") {
  CHECK(builtin(552, "552 5.3.4 Message size exceeds fixed limit") ==
        ReplyCategory::message_too_big);
  CHECK(builtin(552, "552 too much mail data") == ReplyCategory::message_too_big);
  CHECK(builtin(500, "500 5.5.2 Syntax error, command unrecognized") == ReplyCategory::protocol);
  CHECK(builtin(503, "503 bad sequence of commands") == ReplyCategory::protocol);
  CHECK(builtin(451, "451 4.4.2 connection dropped") == ReplyCategory::network);
  CHECK(builtin(421, "421 service shutting down") == ReplyCategory::network);
  CHECK(builtin(421, "421 4.3.2 Service shutting down") == ReplyCategory::network);
  CHECK(builtin(421, "421 4.3.2 Too many connections, try again later") ==
        ReplyCategory::rate_limit);
  CHECK(builtin(421, "421 4.7.0 Throttled: slow down") == ReplyCategory::rate_limit);
  CHECK(builtin(550, "550 Unrouteable address: user unknown") == ReplyCategory::bad_mailbox);
  CHECK(builtin(554, "554 transaction failed") == ReplyCategory::other);
  CHECK(builtin(451, "451 4.7.1 greylisted, try again") == ReplyCategory::policy);
}

TEST_CASE("texts match whatever their case, codes by prefix", "[delivery][category]") {
  CHECK(builtin(450, "450 THROTTLED") == ReplyCategory::rate_limit);
  CHECK(builtin(550, "550 USER UNKNOWN") == ReplyCategory::bad_mailbox);
  // A rule's text lower-cased as well, whatever the config wrote; prefixes of codes.
  const ReplyClassifier classifier(
      {{ReplyCategory::policy, "55", "", "Go AWAY"}, {ReplyCategory::protocol, "", "4.7.", ""}});
  CHECK(classifier.classify({554, "554 go away now"}) == ReplyCategory::policy);
  CHECK(classifier.classify({550, "550 GO away"}) == ReplyCategory::policy);
  CHECK(classifier.classify({450, "450 go away"}) != ReplyCategory::policy);  // not 55x
  CHECK(classifier.classify({451, "451 4.7.28 unusual rate"}) == ReplyCategory::protocol);
  CHECK(classifier.classify({451, "451 4.4.7 nope"}) == ReplyCategory::network);  // not 4.7.
}

TEST_CASE("the config's rules come before the built-in ones", "[delivery][category]") {
  const ReplyClassifier classifier({
      {ReplyCategory::rate_limit, "", "5.7.1", "slow down"},
      {ReplyCategory::other, "0", "", "connection refused"},
  });
  CHECK(classifier.classify({550, "550 5.7.1 please slow down"}) == ReplyCategory::rate_limit);
  CHECK(classifier.classify({550, "550 5.7.1 spam"}) == ReplyCategory::policy);  // built-in
  CHECK(classifier.classify({0, "connect: connection refused"}) == ReplyCategory::other);
  CHECK(classifier.classify({0, "connect: timed out"}) == ReplyCategory::network);
  CHECK(ReplyClassifier::builtin_rules().size() > 40);
  // Every built-in rule says something (one without a condition would hide the rest), its text
  // lower-case as the reply it is matched against.
  for (const ReplyRule& rule : ReplyClassifier::builtin_rules()) {
    CHECK_FALSE((rule.code.empty() && rule.enhanced.empty() && rule.text.empty()));
    CHECK(rule.text == relayq::dns::lower_case(rule.text));
  }
}
