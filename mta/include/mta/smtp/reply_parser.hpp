// Cuts SMTP replies (RFC 5321 4.2) out of the bytes a server sends, strictly, whatever way
// the bytes are split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mta/smtp/client_session.hpp"

namespace relayq::mta {

class ReplyParser {
 public:
  // RFC 5321 allows 512 bytes per reply line; real servers exceed it, so only bound memory.
  static constexpr std::size_t kMaxLine = 4096;
  static constexpr std::size_t kMaxReply = 64 * 1024;

  enum class Outcome : std::uint8_t {
    need_more,  // no complete reply in the input yet
    reply,      // `reply` is the next reply
    malformed,  // `reply` is code 0 "protocol error: ..."; every later call says the same
  };
  struct Parsed {
    Outcome outcome = Outcome::need_more;
    SmtpReply reply;
  };

  void feed(std::string_view bytes);
  Parsed next();

 private:
  Parsed fail(std::string_view what, std::string_view line);

  std::string buffer_;
  std::size_t line_start_ = 0;  // first byte of buffer_ not yet taken into a reply
  std::size_t scanned_ = 0;     // bytes from line_start_ known to hold no LF
  SmtpReply pending_;           // the lines so far of a multi-line reply
  bool failed_ = false;
  SmtpReply failure_;
};

}  // namespace relayq::mta
