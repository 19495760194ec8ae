// The fate of a recipient after a reply: delivered, deferred on the retry schedule (capped at
// max_age), bounced; enhanced status codes and DSN entries.
#include <catch2/catch.hpp>

#include "mta/delivery/recipient_fate.hpp"

using relayq::mta::apply_reply;
using relayq::mta::AttemptContext;
using relayq::mta::dsn_entry;
using relayq::mta::enhanced_status;
using relayq::mta::Fate;
using relayq::mta::ReplyCategory;
using relayq::mta::SmtpReply;
using relayq::queue::Recipient;
using relayq::queue::RecipientState;
using relayq::queue::RetryPolicy;
using relayq::queue::RetryRule;

namespace {

constexpr std::int64_t kReceived = 1'700'000'000'000;

const RetryPolicy& short_policy() {
  static const RetryPolicy policy = [] {
    RetryPolicy made;
    made.initial = std::chrono::seconds(60);
    made.factor = 2.0;
    made.max_interval = std::chrono::hours(1);
    made.max_age = std::chrono::hours(2);
    made.jitter = 0.0;
    return made;
  }();
  return policy;
}

// short_policy() as the default [retry].
RetryRule short_rule() {
  return {short_policy(), {}};
}

Recipient recipient_to(const char* address, std::uint32_t attempts = 0) {
  Recipient recipient;
  recipient.address = address;
  recipient.attempts = attempts;
  return recipient;
}

AttemptContext at(std::int64_t offset_ms) {
  return {kReceived + offset_ms, "mx.example[192.0.2.1]:25", "mx.example", 0.5, ""};
}

}  // namespace

TEST_CASE("a 2xx reply delivers and records the attempt", "[delivery]") {
  Recipient recipient = recipient_to("a@example.org");
  CHECK(apply_reply(recipient, {250, "250 2.0.0 ok"}, ReplyCategory::other, short_rule(), kReceived,
                    at(10)) == Fate::delivered);
  CHECK(recipient.state == RecipientState::delivered);
  CHECK(recipient.attempts == 1);
  REQUIRE(recipient.history.size() == 1);
  CHECK(recipient.history[0].nexthop == "mx.example[192.0.2.1]:25");
  CHECK(recipient.history[0].reply == "250 2.0.0 ok");
  CHECK(recipient.history[0].category.empty());  // successes have no category
  CHECK(recipient.last_reply == "250 2.0.0 ok");
}

TEST_CASE("a 5xx reply bounces at once", "[delivery]") {
  Recipient recipient = recipient_to("a@example.org");
  CHECK(apply_reply(recipient, {550, "550 5.1.1 no such user"}, ReplyCategory::bad_mailbox,
                    short_rule(), kReceived, at(10)) == Fate::bounced);
  CHECK(recipient.state == RecipientState::bounced);
  REQUIRE(recipient.history.size() == 1);
  CHECK(recipient.history[0].category == "bad_mailbox");
}

TEST_CASE("4xx replies and failed connections defer on the growing schedule", "[delivery]") {
  Recipient recipient = recipient_to("a@example.org");
  CHECK(apply_reply(recipient, {451, "451 4.3.0 later"}, ReplyCategory::network, short_rule(),
                    kReceived, at(0)) == Fate::deferred);
  CHECK(recipient.state == RecipientState::pending);
  CHECK(recipient.next_attempt_ms == kReceived + 60'000);
  CHECK(apply_reply(recipient, {0, "connection refused"}, ReplyCategory::network, short_rule(),
                    kReceived, at(60'000)) == Fate::deferred);
  CHECK(recipient.next_attempt_ms == kReceived + 60'000 + 120'000);
  CHECK(recipient.attempts == 2);
}

TEST_CASE("the last try falls on max_age and a failure after it bounces", "[delivery]") {
  const auto rule = short_rule();  // max_age 2 h, waits capped at 1 h
  Recipient recipient = recipient_to("a@example.org", 10);
  CHECK(apply_reply(recipient, {451, "451 later"}, ReplyCategory::other, rule, kReceived,
                    at(90 * 60'000)) == Fate::deferred);
  CHECK(recipient.next_attempt_ms == kReceived + 2 * 3'600'000);
  CHECK(apply_reply(recipient, {451, "451 later"}, ReplyCategory::other, rule, kReceived,
                    at(2 * 3'600'000)) == Fate::bounced);
  CHECK(recipient.state == RecipientState::bounced);
}

TEST_CASE("a deferral keeps the rule that set its next attempt", "[delivery]") {
  RetryPolicy slow = short_policy();
  slow.initial = std::chrono::hours(1);
  const RetryRule slow_rule{slow, "slow.example"};
  Recipient recipient = recipient_to("a@slow.example");
  CHECK(apply_reply(recipient, {451, "451 later"}, ReplyCategory::other, slow_rule, kReceived,
                    at(0)) == Fate::deferred);
  CHECK(recipient.next_attempt_ms == kReceived + 3'600'000);
  CHECK(recipient.retry_rule == "slow.example");
  // The override gone (a reload), the next deferral is the default's.
  CHECK(apply_reply(recipient, {451, "451 later"}, ReplyCategory::other, short_rule(), kReceived,
                    at(3'600'000)) == Fate::deferred);
  CHECK(recipient.next_attempt_ms == kReceived + 3'600'000 + 120'000);
  CHECK(recipient.retry_rule.empty());
}

TEST_CASE("enhanced status codes come from the reply or its class", "[delivery]") {
  CHECK(enhanced_status({550, "550 5.1.1 <a@b>: no such user"}) == "5.1.1");
  CHECK(enhanced_status({550, "550 no code here"}) == "5.0.0");
  CHECK(enhanced_status({451, "451 4.7.1 greylisted"}) == "4.7.1");
  CHECK(enhanced_status({451, "451 5.1.1 class mismatch"}) == "4.0.0");
  CHECK(enhanced_status({0, "connection refused"}) == "4.4.1");
  CHECK(enhanced_status({550, "5.1.10 null MX"}) == "5.1.10");
}

TEST_CASE("DSN entries say failed or delayed with the right diagnostic type", "[delivery]") {
  Recipient recipient = recipient_to("a@example.org");
  const auto bounced =
      dsn_entry(recipient, Fate::bounced, {550, "550 5.1.1 no such user"}, at(0), 0);
  CHECK(bounced.action == "failed");
  CHECK(bounced.status == "5.1.1");
  CHECK(bounced.diagnostic == "smtp; 550 5.1.1 no such user");
  CHECK(bounced.remote_mta == "mx.example");
  const auto expired = dsn_entry(recipient, Fate::bounced, {0, "connection refused"}, at(0), 0);
  CHECK(expired.status == "5.4.7");
  CHECK(expired.diagnostic == "X-relayq; connection refused");
  const auto delayed =
      dsn_entry(recipient, Fate::deferred, {451, "451 4.3.0 later"}, at(0), kReceived + 1000);
  CHECK(delayed.action == "delayed");
  CHECK(delayed.status == "4.3.0");
  CHECK(delayed.will_retry_until_ms == kReceived + 1000);
}
