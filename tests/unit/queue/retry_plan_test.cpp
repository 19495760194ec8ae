// The retry plan: attempts grow by the factor up to the cap, jitter bounds add up, the last
// attempt is at max_age, the delay warning's attempt, per-domain policies.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "queue/retry_plan.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::queue {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// The schedule of the acceptance test's relay: 1 s, doubling, bounced at 20 s.
RetryPolicy short_schedule() {
  RetryPolicy policy;
  policy.initial = seconds(1);
  policy.factor = 2.0;
  policy.max_interval = hours(1);
  policy.max_age = seconds(20);
  policy.jitter = 0.0;
  policy.delay_warning = seconds(5);
  return policy;
}

std::vector<Millis> nominal_times(const RetryPlan& plan) {
  std::vector<Millis> times;
  for (const auto& attempt : plan.attempts) times.push_back(attempt.after);
  return times;
}

}  // namespace

TEST_CASE("retry plan: attempts start at reception and grow by the factor", "[queue][retry]") {
  RetryPolicy policy = short_schedule();
  policy.max_age = hours(1);
  const RetryPlan plan = plan_retries(policy);
  REQUIRE(plan.attempts.size() >= 5);
  CHECK(plan.attempts[0].number == 1);
  CHECK(plan.attempts[0].after == Millis(0));
  // Waits of 1, 2, 4, 8 s after each failure.
  CHECK(plan.attempts[1].after == seconds(1));
  CHECK(plan.attempts[2].after == seconds(3));
  CHECK(plan.attempts[3].after == seconds(7));
  CHECK(plan.attempts[4].after == seconds(15));
  CHECK(plan.attempts[4].number == 5);
}

TEST_CASE("retry plan: waits stop growing at max_interval", "[queue][retry]") {
  RetryPolicy policy = short_schedule();
  policy.max_interval = seconds(10);
  policy.max_age = minutes(1);
  // 0, 1, 3, 7, 15, then 10 s apart: 25, 35, 45, 55, and the last at 60.
  CHECK(nominal_times(plan_retries(policy)) ==
        std::vector<Millis>{seconds(0), seconds(1), seconds(3), seconds(7), seconds(15),
                            seconds(25), seconds(35), seconds(45), seconds(55), seconds(60)});
}

TEST_CASE("retry plan: jitter bounds are each wait's bounds added up", "[queue][retry]") {
  RetryPolicy policy = short_schedule();
  policy.initial = minutes(10);
  policy.max_age = hours(24);
  policy.jitter = 0.1;
  const RetryPlan plan = plan_retries(policy);
  REQUIRE(plan.attempts.size() > 3);
  CHECK(plan.attempts[0].earliest == Millis(0));
  CHECK(plan.attempts[0].latest == Millis(0));
  // 10 min +/- 10 %.
  CHECK(plan.attempts[1].after == minutes(10));
  CHECK(plan.attempts[1].earliest == minutes(9));
  CHECK(plan.attempts[1].latest == minutes(11));
  // Then 20 min +/- 10 % more.
  CHECK(plan.attempts[2].after == minutes(30));
  CHECK(plan.attempts[2].earliest == minutes(27));
  CHECK(plan.attempts[2].latest == minutes(33));
  for (const auto& attempt : plan.attempts) {
    CHECK(attempt.earliest <= attempt.after);
    CHECK(attempt.after <= attempt.latest);
  }
}

TEST_CASE("retry plan: the last attempt is at max_age, and bounces", "[queue][retry]") {
  RetryPolicy policy = short_schedule();
  policy.jitter = 0.1;
  const RetryPlan plan = plan_retries(policy);
  // 15 s + 16 s would be past 20 s: the last try is at 20 s itself.
  CHECK(nominal_times(plan) == std::vector<Millis>{seconds(0), seconds(1), seconds(3), seconds(7),
                                                   seconds(15), seconds(20)});
  CHECK(plan.attempts.back().number == 6);
  CHECK(plan.attempts.back().earliest == seconds(20));
  CHECK(plan.attempts.back().latest == seconds(20));
  // The shortest first wait would be 0.9 s: never less than a second, as retry_delay() says.
  CHECK(plan.attempts[1].earliest == seconds(1));
  CHECK(plan.attempts[4].earliest == Millis(13'600));  // 1 + 1.8 + 3.6 + 7.2 s
  CHECK(plan.attempts[4].latest == Millis(16'500));    // 1.1 + 2.2 + 4.4 + 8.8 s
  CHECK(plan.bounce_after == seconds(20));

  // A wait that ends exactly on max_age is not followed by another.
  policy.max_age = seconds(15);
  CHECK(plan_retries(policy).attempts.back().after == seconds(15));
  CHECK(plan_retries(policy).attempts.size() == 5);
}

TEST_CASE("retry plan: the delay warning follows the first failure at or past delay_warning",
          "[queue][retry]") {
  RetryPolicy policy = short_schedule();
  policy.delay_warning = seconds(5);
  CHECK(plan_retries(policy).delay_warning_attempt == 4u);  // at 7 s
  policy.delay_warning = seconds(7);
  CHECK(plan_retries(policy).delay_warning_attempt == 4u);
  policy.delay_warning = Millis(1);
  CHECK(plan_retries(policy).delay_warning_attempt == 2u);  // the first attempt is at 0
  // Zero means no warning.
  policy.delay_warning = Millis(0);
  CHECK_FALSE(plan_retries(policy).delay_warning_attempt.has_value());
  // Only the last attempt is late enough: it bounces, so no warning goes out.
  policy.delay_warning = seconds(16);
  CHECK_FALSE(plan_retries(policy).delay_warning_attempt.has_value());
}

TEST_CASE("retry plan: a domain's override gives its own plan", "[queue][retry]") {
  RetryPolicy slow = short_schedule();
  slow.initial = seconds(5);
  slow.max_age = minutes(1);
  const RetryPolicies policies(short_schedule(), {{"slow.example", slow}});
  CHECK(nominal_times(plan_retries(policies.for_domain("Slow.Example"))) ==
        std::vector<Millis>{seconds(0), seconds(5), seconds(15), seconds(35), seconds(60)});
  CHECK(plan_retries(policies.for_domain("other.example")).attempts.size() == 6);
  CHECK(plan_retries(policies.for_domain("slow.example")).bounce_after == minutes(1));
}

}  // namespace relayq::queue
