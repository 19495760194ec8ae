// `relayq check-config --diff-against`: the plans of queue's plan_retries() for the old and the
// new config, side by side, one table per retry rule that changed. Main thread.
#include "cli/check_config_diff.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <set>
#include <vector>

#include "cli/retry_plan_text.hpp"
#include "mta/config/config.hpp"
#include "queue/retry_plan.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::mta {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr std::size_t kLabelWidth = 14;  // "delay warning"

std::optional<Config> load(const std::string& path) {
  try {
    return load_config(path);
  } catch (const ConfigError& error) {
    std::cerr << error.what() << "\n";
    return std::nullopt;
  }
}

struct Row {
  std::string label, old_text, new_text;
};

// The attempts row by row (a "-" where one plan has no such attempt), then the delay warning and
// the bounce.
std::vector<Row> plan_rows(const queue::RetryPolicy& old_policy,
                           const queue::RetryPolicy& new_policy) {
  const auto old_plan = queue::plan_retries(old_policy);
  const auto new_plan = queue::plan_retries(new_policy);
  const auto cell = [](const queue::RetryPlan& plan, std::size_t i) {
    return i < plan.attempts.size() ? attempt_time_text(plan.attempts[i])
                                    : fmt::format("{:>7}", "-");
  };
  std::vector<Row> rows;
  for (std::size_t i = 0; i < std::max(old_plan.attempts.size(), new_plan.attempts.size()); ++i) {
    rows.push_back({fmt::format("attempt {:>3}", i + 1), cell(old_plan, i), cell(new_plan, i)});
  }
  rows.push_back({"delay warning", delay_warning_text(old_plan, old_policy),
                  delay_warning_text(new_plan, new_policy)});
  rows.push_back({"bounce", bounce_text(old_plan), bounce_text(new_plan)});
  return rows;
}

// The two plans in columns; rows that differ are marked with '*'.
std::string side_by_side(const queue::RetryPolicy& old_policy,
                         const queue::RetryPolicy& new_policy) {
  const auto rows = plan_rows(old_policy, new_policy);
  std::size_t width = 3;  // "old"
  for (const auto& row : rows) width = std::max(width, row.old_text.size());
  std::string out = fmt::format("  {:<{}}  {:<{}}  new\n", "", kLabelWidth, "old", width);
  for (const auto& row : rows) {
    out += fmt::format("{} {:<{}}  {:<{}}  {}\n", row.old_text == row.new_text ? ' ' : '*',
                       row.label, kLabelWidth, row.old_text, width, row.new_text);
  }
  return out;
}

// One rule's heading: its name, and where a domain has an override in only one of the files,
// which rule the other file gives it.
std::string heading(const queue::RetryRule& old_rule, const queue::RetryRule& new_rule) {
  if (old_rule.domain == new_rule.domain) return rule_name(new_rule);
  if (old_rule.domain.empty())
    return fmt::format("{} (only in the new config; old: {})", rule_name(new_rule),
                       rule_name(old_rule));
  return fmt::format("{} (only in the old config; new: {})", rule_name(old_rule),
                     rule_name(new_rule));
}

std::string retry_schedule_diff(const Config& old_config, const Config& new_config,
                                const std::string& old_path, const std::string& new_path) {
  const queue::RetryPolicies old_policies(old_config.retry, old_config.retry_domains);
  const queue::RetryPolicies new_policies(new_config.retry, new_config.retry_domains);
  // The default first (the empty domain matches no override), then each overridden domain.
  std::set<std::string> domains{""};
  for (const auto& [domain, policy] : old_config.retry_domains) domains.insert(domain);
  for (const auto& [domain, policy] : new_config.retry_domains) domains.insert(domain);
  std::string sections;
  bool changed = false;
  for (const auto& domain : domains) {
    const auto old_rule = old_policies.rule_for(domain);
    const auto new_rule = new_policies.rule_for(domain);
    const bool same = old_rule.policy == new_rule.policy;
    changed |= !same;
    sections += "\n" + heading(old_rule, new_rule) +
                (same ? ": unchanged\n" : "\n" + side_by_side(old_rule.policy, new_rule.policy));
  }
  if (!changed) return "retry schedule unchanged\n";
  return fmt::format("retry schedule changed (old: {}, new: {})\ntimes after reception, {}\n",
                     old_path, new_path, kRetryPlanAssumption) +
         sections;
}

}  // namespace

int check_config_diff(const std::string& new_path, const std::string& old_path) {
  const auto new_config = load(new_path);
  const auto old_config = load(old_path);
  if (!new_config || !old_config) return kExitUsage;
  std::cout << new_path << ": ok\n" << old_path << ": ok\n";
  std::cout << retry_schedule_diff(*old_config, *new_config, old_path, new_path);
  return kExitOk;
}

}  // namespace relayq::mta
