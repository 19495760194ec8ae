// The retry schedule: exponential growth, the cap, jitter bounds, the floor, per-domain lookup.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>

#include "queue/retry_policy.hpp"

namespace relayq::queue {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

RetryPolicy without_jitter() {
  RetryPolicy policy;
  policy.initial = minutes(5);
  policy.factor = 2.0;
  policy.max_interval = hours(4);
  policy.jitter = 0.0;
  return policy;
}

}  // namespace

TEST_CASE("retry waits grow by the factor from the initial wait", "[queue][retry]") {
  const RetryPolicy policy = without_jitter();
  CHECK(retry_delay(policy, 1, 0.5) == minutes(5));
  CHECK(retry_delay(policy, 2, 0.5) == minutes(10));
  CHECK(retry_delay(policy, 3, 0.5) == minutes(20));
  CHECK(retry_delay(policy, 4, 0.5) == minutes(40));
  // Zero failures reads as the first.
  CHECK(retry_delay(policy, 0, 0.5) == minutes(5));

  RetryPolicy slow = policy;
  slow.factor = 1.5;
  CHECK(retry_delay(slow, 3, 0.5) == Millis(675'000));  // 5 min * 2.25
}

TEST_CASE("retry waits stop growing at max_interval", "[queue][retry]") {
  const RetryPolicy policy = without_jitter();
  CHECK(retry_delay(policy, 6, 0.5) == minutes(160));
  CHECK(retry_delay(policy, 7, 0.5) == hours(4));  // 320 min capped
  CHECK(retry_delay(policy, 100, 0.5) == hours(4));
  // So large an exponent overflows a double: the cap still holds.
  CHECK(retry_delay(policy, 4'000'000'000u, 0.5) == hours(4));
}

TEST_CASE("jitter spreads a wait by at most its fraction either way", "[queue][retry]") {
  RetryPolicy policy = without_jitter();
  policy.jitter = 0.1;
  // At 3 failures the wait is 20 min = 1'200'000 ms.
  CHECK(retry_delay(policy, 3, 0.0) == Millis(1'080'000));
  CHECK(retry_delay(policy, 3, 0.5) == Millis(1'200'000));
  const Millis near_top = retry_delay(policy, 3, 0.999999);
  CHECK(near_top <= Millis(1'320'000));
  CHECK(near_top > Millis(1'319'990));
  CHECK(retry_delay(policy, 3, 0.25) == Millis(1'140'000));
  for (double r = 0.0; r < 1.0; r += 0.01) {
    const Millis wait = retry_delay(policy, 3, r);
    CHECK(wait >= Millis(1'080'000));
    CHECK(wait <= Millis(1'320'000));
  }
  // Jitter applies to the capped wait too, so capped waits do not all land at one instant.
  CHECK(retry_delay(policy, 50, 0.0) == Millis(12'960'000));  // 4 h - 10 %
}

TEST_CASE("a retry wait is never shorter than one second", "[queue][retry]") {
  RetryPolicy policy = without_jitter();
  policy.initial = Millis(10);
  CHECK(retry_delay(policy, 1, 0.5) == seconds(1));
  policy.initial = seconds(1);
  policy.jitter = 1.0;
  CHECK(retry_delay(policy, 1, 0.0) == seconds(1));  // jitter would make it 0
  policy.initial = Millis(0);
  CHECK(retry_delay(policy, 5, 0.7) == seconds(1));
}

TEST_CASE("retry policies fall back to the default for domains without an override",
          "[queue][retry]") {
  RetryPolicy fallback = without_jitter();
  RetryPolicy slow = without_jitter();
  slow.initial = hours(1);
  slow.max_age = hours(24);
  const RetryPolicies policies(fallback, {{"slow.example", slow}});

  CHECK(policies.for_domain("slow.example").initial == hours(1));
  CHECK(policies.for_domain("slow.example").max_age == hours(24));
  // Recipient domains keep the case they were typed in.
  CHECK(policies.for_domain("SLOW.Example").initial == hours(1));
  CHECK(policies.for_domain("other.example").initial == minutes(5));
  // Exact domains only: a subdomain is another destination.
  CHECK(policies.for_domain("mx.slow.example").initial == minutes(5));
  CHECK(policies.for_domain("").initial == minutes(5));

  const RetryPolicies defaults;
  CHECK(defaults.for_domain("any.example").initial == minutes(5));
  CHECK(defaults.for_domain("any.example").max_interval == hours(4));
}

TEST_CASE("a retry rule names the override that matched, or none for the default",
          "[queue][retry]") {
  RetryPolicy slow = without_jitter();
  slow.initial = hours(1);
  const RetryPolicies policies(without_jitter(), {{"Slow.Example", slow}});

  const RetryRule matched = policies.rule_for("SLOW.example");
  CHECK(matched.domain == "slow.example");  // the config's key, lower-cased
  CHECK(matched.policy == slow);
  const RetryRule fallback = policies.rule_for("other.example");
  CHECK(fallback.domain.empty());
  CHECK(fallback.policy == without_jitter());
  CHECK(&fallback.policy == &policies.for_domain("other.example"));
}

}  // namespace relayq::queue
