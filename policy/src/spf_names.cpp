// Domain name checks for SPF: label lengths, the top label, truncation and suffix matching.
// Pure, any thread.
#include "spf_names.hpp"

#include <algorithm>

#include "spf_ascii.hpp"

namespace relayq::policy::spf {
namespace {

constexpr std::size_t kMaxName = 253;
constexpr std::size_t kMaxLabel = 63;

std::string_view without_trailing_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// Every label 1 to 63 octets; the number of labels.
std::optional<std::size_t> count_labels(std::string_view name) {
  std::size_t labels = 0;
  for (;;) {
    const auto dot = name.find('.');
    const auto label = name.substr(0, dot);
    if (label.empty() || label.size() > kMaxLabel) return std::nullopt;
    ++labels;
    if (dot == std::string_view::npos) return labels;
    name.remove_prefix(dot + 1);
  }
}

}  // namespace

bool is_toplabel(std::string_view label) {
  if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
  bool alpha = false;
  for (const char c : label) {
    if (!is_alnum(c) && c != '-') return false;
    alpha = alpha || is_alpha(c);
  }
  // The second form of toplabel allows digits only, with inner hyphens ("1-2").
  return alpha || label.find('-') != std::string_view::npos;
}

bool is_valid_domain(std::string_view name) {
  name = without_trailing_dot(name);
  if (name.size() > kMaxName) return false;
  const auto labels = count_labels(name);
  return labels && *labels >= 2 && is_toplabel(name.substr(name.rfind('.') + 1));
}

std::optional<std::string> query_name(std::string_view expanded) {
  std::string_view name = without_trailing_dot(expanded);
  while (name.size() > kMaxName) {
    const auto dot = name.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    name.remove_prefix(dot + 1);
  }
  if (!count_labels(name)) return std::nullopt;
  return std::string(name);
}

bool is_within(std::string_view name, std::string_view target) {
  name = without_trailing_dot(name);
  target = without_trailing_dot(target);
  if (name.size() < target.size()) return false;
  const auto suffix = name.substr(name.size() - target.size());
  const bool same = std::equal(suffix.begin(), suffix.end(), target.begin(),
                               [](char a, char b) { return lower(a) == lower(b); });
  return same && (name.size() == target.size() || name[name.size() - target.size() - 1] == '.');
}

}  // namespace relayq::policy::spf
