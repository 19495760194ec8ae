// libFuzzer target: the config reader (parse_config) on the input as a TOML file; a
// ConfigError (or another std::exception) is the expected answer to a bad file.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "mta/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)relayq::mta::parse_config(text, "fuzz.toml");
  } catch (const relayq::mta::ConfigError&) {
  } catch (const std::exception&) {
  }
  return 0;
}
