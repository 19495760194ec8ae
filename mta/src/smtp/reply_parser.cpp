// Strict SMTP reply parsing for the client session: three digits, then a space, a hyphen or
// the end of the line; one code throughout a multi-line reply; CRLF or (tolerated) bare LF.
#include "mta/smtp/reply_parser.hpp"

#include <cstring>

#include "mta/common/ascii.hpp"

namespace relayq::mta {

namespace {

// 1yz is not used by SMTP, and nothing starts with 0, 6-9: either means a confused peer.
bool is_reply_code(std::string_view line) {
  return line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && is_digit(line[1]) &&
         is_digit(line[2]);
}

int code_of(std::string_view line) {
  return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

// A short printable excerpt of what the server sent, for logs and bounce diagnostics.
std::string excerpt(std::string_view line) {
  constexpr std::size_t kMax = 40;
  std::string shown;
  for (const char c : line.substr(0, kMax)) shown.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (line.size() > kMax) shown.append("...");
  return shown;
}

}  // namespace

void ReplyParser::feed(std::string_view bytes) {
  if (failed_) return;
  // Drop what earlier replies used once per feed, not once per reply.
  buffer_.erase(0, line_start_);
  line_start_ = 0;
  buffer_.append(bytes);
}

ReplyParser::Parsed ReplyParser::next() {
  if (failed_) return {Outcome::malformed, failure_};
  for (;;) {
    const char* start = buffer_.data() + line_start_;
    const std::size_t available = buffer_.size() - line_start_;
    const auto* lf =
        static_cast<const char*>(std::memchr(start + scanned_, '\n', available - scanned_));
    if (lf == nullptr) {
      if (available > kMaxLine) return fail("reply line too long", {start, available});
      scanned_ = available;
      return {};
    }
    std::string_view line(start, static_cast<std::size_t>(lf - start));
    line_start_ += line.size() + 1;
    scanned_ = 0;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine) return fail("reply line too long", line);
    if (!is_reply_code(line) || (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
      return fail("malformed reply", line);
    if (line.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos)
      return fail("bare CR or NUL in reply", line);
    const int code = code_of(line);
    if (pending_.code == 0) {
      pending_.code = code;
    } else {
      if (code != pending_.code) return fail("reply code changed within a reply", line);
      pending_.text.push_back('\n');
    }
    if (pending_.text.size() + line.size() > kMaxReply) return fail("reply too long", line);
    pending_.text.append(line);
    if (line.size() == 3 || line[3] == ' ') {
      Parsed parsed{Outcome::reply, std::move(pending_)};
      pending_ = SmtpReply{};
      return parsed;
    }
  }
}

ReplyParser::Parsed ReplyParser::fail(std::string_view what, std::string_view line) {
  failure_ = SmtpReply{0, "protocol error: " + std::string(what) + " \"" + excerpt(line) + "\""};
  failed_ = true;
  buffer_ = std::string();
  pending_ = SmtpReply{};
  return {Outcome::malformed, failure_};
}

}  // namespace relayq::mta
