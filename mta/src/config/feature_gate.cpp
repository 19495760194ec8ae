// The unbuilt-feature gate: the config keys that parse but whose feature is not built yet. Runs
// on the caller's thread: the main thread, at start and at SIGHUP reload. The first use of one in
// the file is thrown as ConfigError "FILE:LINE: KEY: not supported yet".
#include "config/feature_gate.hpp"

#include <functional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "config/section.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta::config_reader {

namespace {

using namespace std::string_view_literals;

bool is_set(const toml::node& value) {
  if (const auto* table = value.as_table()) return !table->empty();
  if (const auto* array = value.as_array()) return !array->empty();
  return !value.value_or(""sv).empty();
}
bool is_not_off(const toml::node& value) {
  return value.value_or(""sv) != "off";
}

// Keys that parse and validate but whose feature relayq does not have yet: a config that uses
// one is refused rather than half-obeyed. Delete an entry when its feature lands.
struct UnbuiltFeature {
  std::string_view key;  // dotted; applies to every element of an array of tables on the way
  bool (*in_use)(const toml::node& value);
};
constexpr UnbuiltFeature kUnbuiltFeatures[] = {
    {"policy.spf", is_not_off},
    {"policy.dkim_verify", is_not_off},
    {"policy.rdns", is_not_off},
    {"dkim.sign", is_set},
};

// Calls visit(value) for every value at the dotted `key` under `node`.
void visit_key(const toml::node& node, std::string_view key,
               const std::function<void(const toml::node&)>& visit) {
  if (const auto* array = node.as_array()) {
    for (const auto& element : *array) visit_key(element, key, visit);
    return;
  }
  const auto* table = node.as_table();
  const auto dot = key.find('.');
  const auto* child = table == nullptr ? nullptr : table->get(key.substr(0, dot));
  if (child == nullptr) return;
  if (dot == std::string_view::npos) {
    visit(*child);
  } else {
    visit_key(*child, key.substr(dot + 1), visit);
  }
}

}  // namespace

// Refuses the first use in the file of a feature from kUnbuiltFeatures.
void reject_unbuilt_features(const toml::table& root, const std::string& path) {
  const toml::node* first = nullptr;
  std::string_view first_key;
  for (const auto& feature : kUnbuiltFeatures) {
    visit_key(root, feature.key, [&](const toml::node& value) {
      if (feature.in_use(value) && (first == nullptr || line_of(value) < line_of(*first))) {
        first = &value;
        first_key = feature.key;
      }
    });
  }
  if (first != nullptr) {
    throw ConfigError(path + ":" + std::to_string(line_of(*first)) + ": " + std::string(first_key) +
                      ": not supported yet");
  }
}

}  // namespace relayq::mta::config_reader
