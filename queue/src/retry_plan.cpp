// The attempt times of a retry policy, attempt after attempt until max_age.
#include "queue/retry_plan.hpp"

namespace relayq::queue {

RetryPlan plan_retries(const RetryPolicy& policy) {
  RetryPlan plan;
  plan.bounce_after = policy.max_age;
  // min(time + wait, max_age), without overflowing when a wait is near Millis::max().
  const auto capped = [&](Millis time, Millis wait) {
    return wait >= policy.max_age - time ? policy.max_age : time + wait;
  };
  PlannedAttempt attempt{1, Millis(0), Millis(0), Millis(0)};
  plan.attempts.push_back(attempt);
  // retry_delay() itself gives a wait's bounds: unit_random 0 is the shortest, 1 the longest.
  while (attempt.after < policy.max_age) {
    const std::uint32_t failures = attempt.number;
    attempt.number = failures + 1;
    attempt.after = capped(attempt.after, retry_delay(policy, failures, 0.5));
    attempt.earliest = capped(attempt.earliest, retry_delay(policy, failures, 0.0));
    attempt.latest = capped(attempt.latest, retry_delay(policy, failures, 1.0));
    plan.attempts.push_back(attempt);
  }
  if (policy.delay_warning.count() > 0) {
    for (const auto& planned : plan.attempts) {
      if (planned.after >= policy.max_age) break;
      if (planned.after >= policy.delay_warning) {
        plan.delay_warning_attempt = planned.number;
        break;
      }
    }
  }
  return plan;
}

}  // namespace relayq::queue
