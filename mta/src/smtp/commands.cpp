// Command-line framing and argument splitting for the SMTP server session.
#include "smtp/commands.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace relayq::mta {

namespace {

std::string_view trim_spaces(std::string_view text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

const char* find_lf(std::string_view text) {
  return static_cast<const char*>(std::memchr(text.data(), '\n', text.size()));
}

}  // namespace

CommandLine split_command_line(std::string_view line) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos) return {line, {}};
  return {line.substr(0, space), trim_spaces(line.substr(space + 1))};
}

std::optional<BdatArgument> parse_bdat_argument(std::string_view argument) {
  const auto space = argument.find(' ');
  const std::string_view size = argument.substr(0, space);
  BdatArgument result;
  if (size.empty() || !std::all_of(size.begin(), size.end(), is_digit)) return std::nullopt;
  const auto [end, error] = std::from_chars(size.data(), size.data() + size.size(), result.size);
  if (error != std::errc() || end != size.data() + size.size()) return std::nullopt;
  if (space != std::string_view::npos) {
    if (!equals_ignore_case(trim_spaces(argument.substr(space)), "LAST")) return std::nullopt;
    result.last = true;
  }
  return result;
}

CommandFramer::Frame CommandFramer::next(std::string_view input) {
  if (skipping_) {
    const char* lf = find_lf(input);
    if (lf == nullptr) return {Outcome::need_more, input.size(), {}};
    skipping_ = false;
    return {Outcome::too_long, static_cast<std::size_t>(lf - input.data()) + 1, {}};
  }
  const char* lf = find_lf(input.substr(0, kMaxLine));
  if (lf == nullptr) {
    // Whatever way the input is split, a line is over the limit once kMaxLine bytes hold no LF.
    if (input.size() < kMaxLine) return {};
    skipping_ = true;
    Frame rest = next(input.substr(kMaxLine));
    rest.consumed += kMaxLine;
    return rest;
  }
  const std::size_t length = static_cast<std::size_t>(lf - input.data()) + 1;
  if (length < 2 || input[length - 2] != '\r') return {Outcome::malformed, length, {}};
  const std::string_view line = input.substr(0, length - 2);
  if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos)
    return {Outcome::malformed, length, {}};
  return {Outcome::line, length, line};
}

}  // namespace relayq::mta
