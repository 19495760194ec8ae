// The retry schedule for temporary failures ([retry] and [retry.domains."x"] in the config):
// exponential waits with a cap and jitter, a maximum age, and the delay-warning age.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace relayq::queue {

using Millis = std::chrono::milliseconds;

struct RetryPolicy {
  Millis initial = std::chrono::minutes(5);  // wait after the first failure
  double factor = 2.0;                       // each wait is the previous times factor
  Millis max_interval = std::chrono::hours(4);
  Millis max_age = std::chrono::hours(24 * 5);   // then the recipient bounces
  double jitter = 0.1;                           // +/- fraction of each wait
  Millis delay_warning = std::chrono::hours(4);  // 0 = no "delayed" DSN
  bool operator==(const RetryPolicy&) const = default;
};

// The wait after the `failures`-th consecutive failure (1 = first): initial * factor^(n-1),
// capped at max_interval, then scaled by (1 + jitter * (2 * unit_random - 1)) where
// unit_random is in [0, 1). Never less than one second.
Millis retry_delay(const RetryPolicy& policy, std::uint32_t failures, double unit_random);

// A policy with the rule it comes from, for `relayq queue show` and `check-config --diff-against`
// to name. Both refer into the RetryPolicies that gave them.
struct RetryRule {
  const RetryPolicy& policy;
  std::string_view domain;  // the [retry.domains."x"] key that matched; empty for [retry]
};

// The policy per destination domain: overrides by exact (lower-case) domain, else the default.
class RetryPolicies {
 public:
  RetryPolicies() = default;
  RetryPolicies(RetryPolicy default_policy, std::map<std::string, RetryPolicy> per_domain);
  const RetryPolicy& for_domain(std::string_view domain) const;
  RetryRule rule_for(std::string_view domain) const;

 private:
  RetryPolicy default_;
  std::map<std::string, RetryPolicy, std::less<>> per_domain_;
};

}  // namespace relayq::queue
