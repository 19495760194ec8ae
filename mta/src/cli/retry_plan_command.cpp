// `relayq retry-plan`: queue's plan_retries() on the policy the config gives, as text or JSON.
// Main thread.
#include "cli/retry_plan_command.hpp"

#include <fmt/core.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "dns/domain_name.hpp"
#include "mta/cli/queue_text.hpp"
#include "mta/config/config.hpp"
#include "queue/retry_plan.hpp"

namespace relayq::mta {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr std::string_view kAssumption = "each attempt fails at once with a 4xx";

double seconds(queue::Millis time) {
  return static_cast<double>(time.count()) / 1000.0;
}

std::string json_text(const queue::RetryPlan& plan, const std::string& domain,
                      const std::string& rule) {
  nlohmann::ordered_json out;
  if (!domain.empty()) out["domain"] = domain;
  out["rule"] = rule;
  out["assumes"] = kAssumption;
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
  out += fmt::format("times after reception, {}; jitter +/-{:g}% of each wait\n", kAssumption,
                     policy.jitter * 100);
  for (const auto& attempt : plan.attempts) {
    out +=
        fmt::format("attempt {:>3}  {:>7}", attempt.number, format_duration(attempt.after.count()));
    // The first attempt, at reception, has no range to show (nor any without jitter).
    if (attempt.earliest != attempt.latest)
      out += fmt::format("  ({} .. {})", format_duration(attempt.earliest.count()),
                         format_duration(attempt.latest.count()));
    out += "\n";
  }
  if (plan.delay_warning_attempt) {
    const auto& attempt = plan.attempts[*plan.delay_warning_attempt - 1];
    out += fmt::format("delay warning: after attempt {} fails, {} (delay_warning = {})\n",
                       attempt.number, format_duration(attempt.after.count()),
                       format_duration(policy.delay_warning.count()));
  } else {
    out += policy.delay_warning.count() == 0
               ? "delay warning: none (delay_warning = 0)\n"
               : fmt::format("delay warning: none (the bounce comes first: delay_warning = {})\n",
                             format_duration(policy.delay_warning.count()));
  }
  out += fmt::format("bounce: after attempt {} fails, {} (max_age)\n", plan.attempts.back().number,
                     format_duration(plan.bounce_after.count()));
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
  const queue::RetryPolicy* policy = &config.retry;
  std::string rule = "default [retry]";
  // The config's domain keys are lower-case, like the delivery engine's lookup.
  const std::string key = dns::lower_case(domain);
  if (const auto it = config.retry_domains.find(key);
      !domain.empty() && it != config.retry_domains.end()) {
    policy = &it->second;
    rule = fmt::format("[retry.domains.\"{}\"]", key);
  }
  const queue::RetryPlan plan = queue::plan_retries(*policy);
  std::cout << (json ? json_text(plan, domain, rule) : human_text(plan, *policy, domain, rule));
  return kExitOk;
}

}  // namespace relayq::mta
