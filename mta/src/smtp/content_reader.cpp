// ContentReader: one memchr per line finds its end, two more check it for NUL and bare CR.
#include "mta/smtp/content_reader.hpp"

#include <algorithm>
#include <cstring>

namespace relayq::mta {

ContentReader::ContentReader(Framing framing, std::string prefix, std::uint64_t max_size,
                             std::uint64_t expected_size, std::uint64_t max_header_size)
    : framing_(framing),
      body_(std::move(prefix)),
      prefix_size_(body_.size()),
      max_size_(max_size),
      max_header_size_(max_header_size) {
  body_.reserve(prefix_size_ + static_cast<std::size_t>(std::min(expected_size, max_size)));
}

std::size_t ContentReader::feed(std::string_view bytes) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end && !ended_) {
    if (cr_pending_) {
      cr_pending_ = false;
      if (*p == '\n') {
        ++p;
        end_line(true);
        continue;
      }
      // The CR was not part of a line end: a bare CR, counted like any other line byte.
      fail(Fault::bad_bytes);
      count_line_bytes(1);
    }
    if (line_start_) {
      line_start_ = false;
      // Dot-unstuffing (RFC 5321 4.5.2): a leading "." is removed; alone on a line that follows
      // a CRLF it is the terminator, which end_line() recognises.
      if (framing_ == Framing::dot_terminated && *p == '.') {
        dot_line_ = clean_start_;
        ++p;
        continue;
      }
    }
    const auto* lf =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* part_end = lf != nullptr ? lf : end;
    // A CR right before the LF, or at the very end of this read, may be the line's CRLF.
    const bool cr = part_end > p && part_end[-1] == '\r';
    scan_line_part(std::string_view(p, static_cast<std::size_t>(part_end - p) - (cr ? 1 : 0)));
    if (lf != nullptr) {
      p = lf + 1;
      end_line(cr);
    } else {
      p = end;
      cr_pending_ = cr;
    }
  }
  return static_cast<std::size_t>(p - bytes.data());
}

void ContentReader::finish() {
  if (cr_pending_) {
    cr_pending_ = false;
    fail(Fault::bad_bytes);
  }
  if (!line_start_) append("\r\n");
}

// Bytes of a line that hold no LF and no CRLF ending: any CR or NUL in them is bad.
void ContentReader::scan_line_part(std::string_view part) {
  if (std::memchr(part.data(), '\r', part.size()) != nullptr ||
      std::memchr(part.data(), '\0', part.size()) != nullptr)
    fail(Fault::bad_bytes);
  count_line_bytes(part.size());
  append(part);
}

void ContentReader::end_line(bool crlf) {
  if (in_header_) {
    // The empty line ends the header section; its CRLF is the body's.
    if (line_length_ == 0) {
      in_header_ = false;
    } else {
      count_header_bytes(2);
    }
  }
  if (!crlf) {
    fail(Fault::bad_bytes);  // a bare LF
  } else if (dot_line_ && line_length_ == 0) {
    ended_ = true;
  } else {
    append("\r\n");
  }
  line_length_ = 0;
  line_start_ = true;
  clean_start_ = crlf;
  dot_line_ = false;
}

void ContentReader::count_line_bytes(std::size_t count) {
  line_length_ += count;
  if (line_length_ + 2 > kMaxLine) fail(Fault::line_too_long);
  if (in_header_) count_header_bytes(count);
}

void ContentReader::count_header_bytes(std::size_t count) {
  header_bytes_ += count;
  if (header_bytes_ > max_header_size_) fail(Fault::header_too_big);
}

void ContentReader::append(std::string_view bytes) {
  if (fault_ != Fault::none) return;
  if (body_.size() - prefix_size_ + bytes.size() > max_size_) {
    fail(Fault::too_big);
    return;
  }
  body_.append(bytes);
}

// A refused message is read to its end but no longer kept.
void ContentReader::fail(Fault fault) {
  if (fault_ == Fault::none) body_ = std::string();
  fault_ = std::max(fault_, fault);
}

}  // namespace relayq::mta
