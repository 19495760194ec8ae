// Building RFC 3464 delivery status notifications (multipart/report of RFC 6522).
#include "queue/dsn.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include "queue/rfc5322_date.hpp"

namespace relayq::queue {
namespace {

constexpr std::string_view kCrlf = "\r\n";
// RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST within 998.
constexpr std::size_t kFoldWidth = 78;
constexpr std::size_t kMaxLine = 998;
// A reply of many lines (some servers explain at length) is cut to this before folding.
constexpr std::size_t kMaxDiagnostic = 2000;
constexpr std::size_t kMaxHeaderSection = 64 * 1024;

bool is_failed(const DsnRecipient& recipient) {
  return recipient.action != "delayed";
}

// Text from the network (replies, host names), possibly with any bytes, as one line of
// printable ASCII (message/delivery-status is a 7-bit header block): controls and line breaks
// become spaces, other bytes '?', and folding later collapses the runs of spaces.
std::string printable(std::string_view text) {
  std::string line;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    line.push_back(byte < 0x20 || byte == 0x7F ? ' ' : byte >= 0x80 ? '?' : c);
  }
  return line;
}

// A diagnostic split into its type ("smtp", "X-relayq") and its text; "smtp" when the text
// does not start with "type;".
struct Diagnostic {
  std::string_view type = "smtp";
  std::string_view text;
};

Diagnostic split_diagnostic(std::string_view diagnostic) {
  const std::size_t semicolon = diagnostic.find(';');
  const std::string_view type = diagnostic.substr(0, semicolon);
  // An RFC 3464 diagnostic-type is an atom; a reply starts with its digits, never a letter.
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  const auto atom_char = [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '-'; };
  const bool typed = semicolon != std::string_view::npos && !type.empty() && letter(type.front()) &&
                     std::all_of(type.begin(), type.end(), atom_char);
  if (!typed) return {.text = diagnostic};
  std::string_view text = diagnostic.substr(semicolon + 1);
  while (text.starts_with(' ')) text.remove_prefix(1);
  return {type, text};
}

// A reply of one or more lines as one line: "550-5.1.1 a\r\n550 5.1.1 b" reads
// "550-5.1.1 a 550 5.1.1 b", as other MTAs write it.
std::string diagnostic_line(std::string_view reply) {
  std::string line = printable(reply.substr(0, kMaxDiagnostic));
  if (reply.size() > kMaxDiagnostic) line.append(" ...");
  return line;
}

// `prefix` then the words of `text`, wrapped at spaces to kFoldWidth where a word allows it,
// continuation lines starting with `indent`; a word too long for any line is cut at kMaxLine.
// The first word always follows the prefix directly.
// With indent " " this is RFC 5322 header folding; with "    " an indented paragraph.
std::string fold(std::string_view prefix, std::string_view text, std::string_view indent) {
  std::string out;
  std::string line(prefix);
  bool at_start = true;  // nothing but the prefix or indent on this line yet
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (!at_start && line.size() + 1 + word.size() > kFoldWidth) {
      out.append(line).append(kCrlf);
      line.assign(indent);
      at_start = true;
    }
    if (!at_start) line.push_back(' ');
    line.append(word.substr(0, kMaxLine - std::min(line.size(), kMaxLine)));
    at_start = false;
  }
  out.append(line).append(kCrlf);
  return out;
}

// Text that is already in lines (the original headers), with CRLF endings and no line over
// kMaxLine whatever the stored bytes were.
std::string as_crlf_lines(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    std::string clean(line.substr(0, kMaxLine));
    std::replace(clean.begin(), clean.end(), '\r', ' ');
    out.append(clean).append(kCrlf);
  }
  return out;
}

// Text from the queue record (addresses) on one line: control bytes, which no session lets
// into an address but a damaged record may hold, become '?'; 8-bit bytes of SMTPUTF8
// addresses stay.
std::string without_controls(std::string_view text) {
  std::string line(text);
  std::replace_if(
      line.begin(), line.end(),
      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }, '?');
  return line;
}

// One header field on one line, cut at kMaxLine whatever its value holds.
std::string field(std::string_view name, std::string_view value) {
  std::string line(name);
  line.append(": ").append(without_controls(value));
  if (line.size() > kMaxLine) line.resize(kMaxLine);
  line.append(kCrlf);
  return line;
}

std::string human_part(const DsnRequest& request, bool failed) {
  std::string text =
      "Content-Description: Notification\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
  text.append("This is the mail system at " + request.reporting_mta + ".\r\n\r\n");
  text.append(fold("",
                   failed ? "Your message could not be delivered to one or more of its "
                            "recipients; the reasons are given below."
                          : "Your message has not been delivered yet to the recipients below. "
                            "The mail system keeps trying; you do not need to send it again.",
                   ""));
  text.append(kCrlf).append(fold("", "The header section of your message is attached.", ""));
  for (const auto& recipient : request.recipients) {
    text.append(kCrlf).append(
        fold("", "<" + without_controls(recipient.address) + ">: " + recipient.action, ""));
    const std::string_view diagnostic = split_diagnostic(recipient.diagnostic).text;
    std::string reason = diagnostic.empty() ? "no reply" : diagnostic_line(diagnostic);
    if (!recipient.remote_mta.empty())
      reason = printable(recipient.remote_mta) + " said: " + reason;
    if (recipient.will_retry_until_ms != 0) {
      reason += " (trying until " + format_rfc5322_date(recipient.will_retry_until_ms) + ")";
    }
    text.append(fold("    ", reason, "    "));
  }
  return text;
}

std::string status_part(const DsnRequest& request) {
  std::string text =
      "Content-Description: Delivery report\r\n"
      "Content-Type: message/delivery-status\r\n\r\n";
  text.append(field("Reporting-MTA", "dns; " + request.reporting_mta));
  text.append(field("Arrival-Date", format_rfc5322_date(request.original->received_ms)));
  for (const auto& recipient : request.recipients) {
    text.append(kCrlf);
    text.append(field("Final-Recipient", "rfc822; " + recipient.address));
    text.append(field("Action", recipient.action));
    const std::string_view fallback = is_failed(recipient) ? "5.0.0" : "4.0.0";
    text.append(field("Status", recipient.status.empty() ? fallback : recipient.status));
    if (!recipient.remote_mta.empty()) {
      text.append(field("Remote-MTA", "dns; " + printable(recipient.remote_mta)));
    }
    if (!recipient.diagnostic.empty()) {
      const Diagnostic diagnostic = split_diagnostic(recipient.diagnostic);
      const std::string prefix = "Diagnostic-Code: " + std::string(diagnostic.type) + "; ";
      text.append(fold(prefix, diagnostic_line(diagnostic.text), " "));
    }
    if (recipient.last_attempt_ms != 0) {
      text.append(field("Last-Attempt-Date", format_rfc5322_date(recipient.last_attempt_ms)));
    }
    if (!is_failed(recipient) && recipient.will_retry_until_ms != 0) {
      text.append(field("Will-Retry-Until", format_rfc5322_date(recipient.will_retry_until_ms)));
    }
  }
  return text;
}

bool has_eight_bit(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

std::string headers_part(const DsnRequest& request) {
  const std::string headers = as_crlf_lines(request.original_headers);
  std::string text =
      "Content-Description: Undelivered Message Headers\r\n"
      "Content-Type: text/rfc822-headers\r\n";
  // Headers of an SMTPUTF8 or 8BITMIME message may carry raw 8-bit bytes.
  if (has_eight_bit(headers)) text.append("Content-Transfer-Encoding: 8bit\r\n");
  text.append(kCrlf).append(headers);
  return text;
}

// A boundary that occurs in no part: the DSN's id makes it unique per message, and the
// counter covers original headers that happen to (or were made to) contain it.
std::string choose_boundary(MessageId id, const std::vector<std::string>& parts) {
  const std::string base = "=_relayq_dsn_" + format_id(id);
  std::string boundary = base;
  for (int n = 1; std::any_of(
           parts.begin(), parts.end(),
           [&](const std::string& part) { return part.find(boundary) != std::string::npos; });
       ++n) {
    boundary = base + "_" + std::to_string(n);
  }
  return boundary;
}

}  // namespace

Message build_dsn(const DsnRequest& request, MessageId id, std::int64_t now_ms) {
  if (request.original == nullptr) throw std::invalid_argument("build_dsn: no original message");
  const Envelope& original = *request.original;
  if (original.sender.empty()) {
    throw std::invalid_argument("build_dsn: the original has a null sender, nobody to notify");
  }
  const bool failed = std::any_of(request.recipients.begin(), request.recipients.end(), is_failed);

  const std::vector<std::string> parts{human_part(request, failed), status_part(request),
                                       headers_part(request)};
  const std::string boundary = choose_boundary(id, parts);

  std::string body;
  body.append(field("From", "Mail Delivery System <MAILER-DAEMON@" + request.reporting_mta + ">"));
  body.append(field("To", "<" + original.sender + ">"));
  body.append(field("Subject", failed ? "Undelivered Mail Returned to Sender"
                                      : "Delayed Mail (still being retried)"));
  body.append(field("Date", format_rfc5322_date(now_ms)));
  body.append(field("Message-ID", "<" + format_id(id) + ".dsn@" + request.reporting_mta + ">"));
  // RFC 3834: tells auto-responders (vacation replies) not to answer.
  body.append(field("Auto-Submitted", "auto-replied"));
  body.append(field("MIME-Version", "1.0"));
  body.append("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" +
              boundary + "\"\r\n");
  body.append(kCrlf);
  // For readers that do not understand MIME.
  body.append("This is a MIME-encapsulated message.\r\n");
  for (const auto& part : parts) body.append("\r\n--" + boundary + "\r\n").append(part);
  body.append("\r\n--" + boundary + "--\r\n");

  Message dsn;
  Envelope& envelope = dsn.envelope;
  envelope.id = id;
  envelope.sender.clear();  // the null sender: a DSN is never answered by another
  Recipient& recipient = envelope.recipients.emplace_back();
  recipient.address = original.sender;
  envelope.received_ms = now_ms;
  envelope.listener = "dsn";
  // A non-ASCII sender address needs SMTPUTF8 to be reached at all.
  envelope.smtputf8 = original.smtputf8;
  envelope.eight_bit_mime = has_eight_bit(body);
  envelope.size = body.size();
  dsn.body = std::move(body);
  return dsn;
}

std::string header_section(const std::string& body) {
  if (body.starts_with(kCrlf)) return {};  // an empty header section
  const std::size_t blank = body.find("\r\n\r\n");
  // Without a blank line the whole body is headers (RFC 5322 allows a message without a body).
  std::size_t end = blank == std::string::npos ? body.size() : blank + kCrlf.size();
  if (end > kMaxHeaderSection) {
    // The last CRLF that ends at or before the cap.
    const std::size_t last = body.rfind(kCrlf, kMaxHeaderSection - kCrlf.size());
    end = last == std::string::npos ? 0 : last + kCrlf.size();
  }
  return body.substr(0, end);
}

}  // namespace relayq::queue
