// The words of a retry plan that `relayq retry-plan` and `relayq check-config --diff-against`
// both print: the rule's name, an attempt's time with its jitter range, the delay warning and the
// bounce. Main thread.
#pragma once

#include <string>
#include <string_view>

#include "queue/retry_plan.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::mta {

// What every plan's times assume.
inline constexpr std::string_view kRetryPlanAssumption = "each attempt fails at once with a 4xx";

// "default [retry]" or "[retry.domains."slow.example"]".
std::string rule_name(const queue::RetryRule& rule);

// The attempt's time after reception, right-aligned, then its jitter range:
// "     5m  (4m30s .. 5m30s)"; the time alone when there is no range (the first attempt).
std::string attempt_time_text(const queue::PlannedAttempt& attempt);

// "after attempt 7 fails, 5h15m (delay_warning = 4h)", or why no warning goes out.
std::string delay_warning_text(const queue::RetryPlan& plan, const queue::RetryPolicy& policy);

// "after attempt 36 fails, 5d (max_age)"
std::string bounce_text(const queue::RetryPlan& plan);

}  // namespace relayq::mta
