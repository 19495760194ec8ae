// Log lines as logfmt or JSON: one event per line, `event=name key=value ...`, values quoted
// and escaped so that a reply text or an address can never break a line in two.
#pragma once

#include <fmt/format.h>
#include <spdlog/common.h>

#include <string>
#include <string_view>

namespace relayq::mta {

enum class LogFormat { logfmt, json };

// Installs the stderr logger with the chosen line format and level.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// A logfmt value: written bare when it is one safe token, else in quotes with escapes.
struct LogValue {
  std::string_view text;
};
inline LogValue quoted(std::string_view text) {
  return {text};
}

// Appends `text` to `out` in logfmt form (what fmt::formatter<LogValue> prints).
void append_logfmt_value(std::string& out, std::string_view text);

// Turns one logfmt payload into a JSON object's members (without braces). Text that is not
// logfmt (a free-form message from a library) becomes "msg":"...".
std::string logfmt_to_json_members(std::string_view payload);

}  // namespace relayq::mta

template <>
struct fmt::formatter<relayq::mta::LogValue> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const relayq::mta::LogValue& value, Context& context) const {
    std::string out;
    relayq::mta::append_logfmt_value(out, value.text);
    return fmt::formatter<std::string_view>::format(out, context);
  }
};
