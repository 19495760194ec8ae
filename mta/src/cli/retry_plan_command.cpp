// `relayq retry-plan`: queue's plan_retries() on the policy the config gives, as text or JSON.
// Main thread.
#include "cli/retry_plan_command.hpp"

#include <fmt/core.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/retry_plan_text.hpp"
#include "mta/config/config.hpp"
#include "queue/retry_plan.hpp"

namespace relayq::mta {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

double seconds(queue::Millis time) {
  return static_cast<double>(time.count()) / 1000.0;
}

std::string json_text(const queue::RetryPlan& plan, const std::string& domain,
                      const std::string& rule) {
  nlohmann::ordered_json out;
  if (!domain.empty()) out["domain"] = domain;
  out["rule"] = rule;
  out["assumes"] = kRetryPlanAssumption;
  auto& attempts = out["attempts"] = nlohmann::ordered_json::array();
  for (const auto& attempt : plan.attempts) {
    attempts.push_back({{"number", attempt.number},
                        {"after_seconds", seconds(attempt.after)},
                        {"earliest_seconds", seconds(attempt.earliest)},
                        {"latest_seconds", seconds(attempt.latest)}});
  }
  if (plan.delay_warning_attempt) {
    out["delay_warning_seconds"] = seconds(plan.attempts[*plan.delay_warning_attempt - 1].after);
    out["delay_warning_attempt"] = *plan.delay_warning_attempt;
  } else {
    out["delay_warning_seconds"] = nullptr;
    out["delay_warning_attempt"] = nullptr;
  }
  out["bounce_after_seconds"] = seconds(plan.bounce_after);
  out["bounce_attempt"] = plan.attempts.back().number;
  return out.dump(2) + "\n";
}

std::string human_text(const queue::RetryPlan& plan, const queue::RetryPolicy& policy,
                       const std::string& domain, const std::string& rule) {
  std::string out =
      fmt::format("retry plan{}: {}\n", domain.empty() ? "" : fmt::format(" for {}", domain), rule);
  out += fmt::format("times after reception, {}; jitter +/-{:g}% of each wait\n",
                     kRetryPlanAssumption, policy.jitter * 100);
  for (const auto& attempt : plan.attempts) {
    out += fmt::format("attempt {:>3}  {}\n", attempt.number, attempt_time_text(attempt));
  }
  out += "delay warning: " + delay_warning_text(plan, policy) + "\n";
  out += "bounce: " + bounce_text(plan) + "\n";
  return out;
}

}  // namespace

int retry_plan(const std::string& config_path, const std::string& domain, bool json) {
  Config config;
  try {
    config = load_config(config_path);
  } catch (const ConfigError& error) {
    std::cerr << error.what() << "\n";
    return kExitUsage;
  }
  // The delivery engine's own lookup: the same override for any case of the domain.
  const queue::RetryPolicies policies(config.retry, config.retry_domains);
  const queue::RetryRule rule = policies.rule_for(domain);
  const queue::RetryPlan plan = queue::plan_retries(rule.policy);
  const std::string name = rule_name(rule);
  std::cout << (json ? json_text(plan, domain, name) : human_text(plan, rule.policy, domain, name));
  return kExitOk;
}

}  // namespace relayq::mta
