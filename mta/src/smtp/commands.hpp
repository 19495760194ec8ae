// SMTP commands as data: the shape of the command table, the framing of command lines
// (RFC 5321 4.5.3.1.4) and the splitting and parsing of their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "mta/common/ascii.hpp"

namespace relayq::mta {

// Where a command may appear. The session checks these before it runs the handler.
enum CommandFlag : std::uint8_t {
  kNeedsGreeting = 1 << 0,  // 503 before HELO/EHLO
  kNeedsMail = 1 << 1,      // 503 outside a MAIL transaction
  kNotInMail = 1 << 2,      // 503 inside a MAIL transaction
  kNeedsArgument = 1 << 3,  // 501 without an argument
  kNoArgument = 1 << 4,     // 501 with one
  kJunk = 1 << 5,           // moves no mail: counted against max_junk_commands
};

// One row of a command table: the verb, the member function that runs it, and its flags.
template <class Handler>
struct CommandSpec {
  std::string_view verb;  // upper case
  void (Handler::*handle)(std::string_view argument);
  std::uint8_t flags;
  std::string_view syntax;  // quoted in the 501 reply to a missing or unexpected argument
};

// Verbs are case-insensitive (RFC 5321 2.4).
template <class Handler>
const CommandSpec<Handler>* find_command(std::span<const CommandSpec<Handler>> table,
                                         std::string_view verb) {
  for (const auto& spec : table)
    if (equals_ignore_case(spec.verb, verb)) return &spec;
  return nullptr;
}

struct CommandLine {
  std::string_view verb;
  std::string_view argument;  // surrounding spaces removed
};

// `line` is a command without its CRLF.
CommandLine split_command_line(std::string_view line);

// "BDAT <size> [LAST]" (RFC 3030 2).
struct BdatArgument {
  std::uint64_t size = 0;
  bool last = false;
};
std::optional<BdatArgument> parse_bdat_argument(std::string_view argument);

// Cuts command lines out of the input. A line longer than kMaxLine is skipped as it arrives,
// without being buffered, and reported once its end is seen.
class CommandFramer {
 public:
  static constexpr std::size_t kMaxLine = 512;  // CRLF included

  enum class Outcome : std::uint8_t {
    need_more,  // no line ends in the input; `consumed` bytes of an over-long line were skipped
    line,       // `line` is a command, without its CRLF
    too_long,   // an over-long line ended
    malformed,  // a line ending in a bare LF, or holding a bare CR or a NUL
  };
  struct Frame {
    Outcome outcome = Outcome::need_more;
    std::size_t consumed = 0;  // bytes of the input used up
    std::string_view line;
  };

  Frame next(std::string_view input);

 private:
  bool skipping_ = false;  // inside an over-long line: drop bytes up to its LF
};

}  // namespace relayq::mta
