// Message content as it arrives after DATA or in BDAT chunks: line checks, dot-unstuffing,
// the end of data, and the size limit. Bytes go straight into the message body, once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace relayq::mta {

class ContentReader {
 public:
  enum class Framing : std::uint8_t {
    dot_terminated,  // DATA: dot-stuffed, ends at CRLF "." CRLF and nowhere else (RFC 5321 4.5.2)
    counted,         // BDAT: raw octets whose count the session tracks (RFC 3030)
  };
  // Why the content is refused. When several apply the greatest wins, so the verdict does not
  // depend on how the bytes were split into reads.
  enum class Fault : std::uint8_t { none, too_big, header_too_big, line_too_long, bad_bytes };

  static constexpr std::size_t kMaxLine = 1000;  // RFC 5321 4.5.3.1.6, CRLF included

  // `prefix` (the trace header) starts the body; `max_size` bounds the content after it,
  // `max_header_size` its header section (up to the first empty line, CRLFs included), and
  // `expected_size` (the SIZE= of MAIL, 0 if none) sizes the buffer up front.
  ContentReader(Framing framing, std::string prefix, std::uint64_t max_size,
                std::uint64_t expected_size,
                std::uint64_t max_header_size = std::numeric_limits<std::uint64_t>::max());

  // Reads content. With dot_terminated framing it stops right after the terminator and
  // returns how many bytes it used; counted framing uses all of them.
  std::size_t feed(std::string_view bytes);
  // dot_terminated: the CRLF.CRLF has been read.
  bool ended() const { return ended_; }
  // counted: the last chunk is in. A CR still waiting for its LF is a bare CR; a last line
  // without its CRLF gets one.
  void finish();
  Fault fault() const { return fault_; }
  // The prefix and the content, CRLF lines, unstuffed. Empty once a fault was found.
  std::string take_body() { return std::move(body_); }

 private:
  void scan_line_part(std::string_view part);
  void end_line(bool crlf);
  void count_line_bytes(std::size_t count);
  void count_header_bytes(std::size_t count);
  void append(std::string_view bytes);
  void fail(Fault fault);

  Framing framing_;
  std::string body_;
  std::size_t prefix_size_;
  std::uint64_t max_size_;
  std::uint64_t max_header_size_;
  std::uint64_t header_bytes_ = 0;  // of the header section so far
  bool in_header_ = true;           // no empty line yet
  std::size_t line_length_ =
      0;                     // bytes of the current line so far, CRLF and stuffed dot not counted
  bool line_start_ = true;   // the next byte is the first of a line
  bool clean_start_ = true;  // the current line follows a CRLF (or the start of data)
  bool dot_line_ = false;    // the current line began, cleanly, with a "." that was removed
  bool cr_pending_ = false;  // the last byte read was a CR; its LF may be in the next read
  bool ended_ = false;
  Fault fault_ = Fault::none;
};

}  // namespace relayq::mta
