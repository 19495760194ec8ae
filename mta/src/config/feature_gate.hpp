// The unbuilt-feature gate (feature_gate.cpp), for parse_config. Runs on the caller's thread:
// the main thread, at start and at SIGHUP reload.
#pragma once

#include <string>

#include <toml++/toml.h>

namespace relayq::mta::config_reader {

// Throws ConfigError "FILE:LINE: KEY: not supported yet" for the first use in the file (`root`,
// read from `path`) of a key whose feature is not built yet.
void reject_unbuilt_features(const toml::table& root, const std::string& path);

}  // namespace relayq::mta::config_reader
