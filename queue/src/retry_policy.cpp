// Retry arithmetic: exponential waits with cap and jitter, and the per-domain policy lookup.
#include "queue/retry_policy.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "dns/domain_name.hpp"

namespace relayq::queue {
namespace {

constexpr Millis kMinimumDelay = std::chrono::seconds(1);

}  // namespace

Millis retry_delay(const RetryPolicy& policy, std::uint32_t failures, double unit_random) {
  const double exponent = failures > 0 ? static_cast<double>(failures - 1) : 0.0;
  // In double: factor^exponent overflows to infinity long before the cap matters, and the
  // cap then takes over instead of an integer wrapping around.
  const double grown =
      static_cast<double>(policy.initial.count()) * std::pow(policy.factor, exponent);
  const double capped = std::min(grown, static_cast<double>(policy.max_interval.count()));
  const double spread = 2.0 * std::clamp(unit_random, 0.0, 1.0) - 1.0;
  const double jittered = capped * (1.0 + policy.jitter * spread);
  // A NaN (from a NaN factor or jitter) fails the comparison: the floor wins.
  if (!(jittered >= static_cast<double>(kMinimumDelay.count()))) return kMinimumDelay;
  // Converting a double beyond the integer's range would be undefined behaviour.
  if (jittered >= static_cast<double>(Millis::max().count())) return Millis::max();
  // Rounded, not truncated: 0.95 and friends are not exact in binary.
  return Millis(std::llround(jittered));
}

RetryPolicies::RetryPolicies(RetryPolicy default_policy,
                             std::map<std::string, RetryPolicy> per_domain)
    : default_(std::move(default_policy)) {
  for (auto& [domain, policy] : per_domain) per_domain_.emplace(dns::lower_case(domain), policy);
}

const RetryPolicy& RetryPolicies::for_domain(std::string_view domain) const {
  return rule_for(domain).policy;
}

RetryRule RetryPolicies::rule_for(std::string_view domain) const {
  // Recipient domains keep the case the client typed; the config's keys are lower-case.
  const auto it = per_domain_.find(dns::lower_case(domain));
  if (it == per_domain_.end()) return {default_, {}};
  return {it->second, it->first};
}

}  // namespace relayq::queue
