// The words of a retry plan shared by `relayq retry-plan` and `relayq check-config
// --diff-against`. Main thread.
#include "cli/retry_plan_text.hpp"

#include <fmt/core.h>

#include "mta/cli/queue_text.hpp"

namespace relayq::mta {

std::string rule_name(const queue::RetryRule& rule) {
  return rule.domain.empty() ? "default [retry]"
                             : fmt::format("[retry.domains.\"{}\"]", rule.domain);
}

std::string attempt_time_text(const queue::PlannedAttempt& attempt) {
  std::string out = fmt::format("{:>7}", format_duration(attempt.after.count()));
  // The first attempt, at reception, has no range to show (nor any without jitter).
  if (attempt.earliest != attempt.latest)
    out += fmt::format("  ({} .. {})", format_duration(attempt.earliest.count()),
                       format_duration(attempt.latest.count()));
  return out;
}

std::string delay_warning_text(const queue::RetryPlan& plan, const queue::RetryPolicy& policy) {
  if (plan.delay_warning_attempt) {
    const auto& attempt = plan.attempts[*plan.delay_warning_attempt - 1];
    return fmt::format("after attempt {} fails, {} (delay_warning = {})", attempt.number,
                       format_duration(attempt.after.count()),
                       format_duration(policy.delay_warning.count()));
  }
  return policy.delay_warning.count() == 0
             ? "none (delay_warning = 0)"
             : fmt::format("none (the bounce comes first: delay_warning = {})",
                           format_duration(policy.delay_warning.count()));
}

std::string bounce_text(const queue::RetryPlan& plan) {
  return fmt::format("after attempt {} fails, {} (max_age)", plan.attempts.back().number,
                     format_duration(plan.bounce_after.count()));
}

}  // namespace relayq::mta
