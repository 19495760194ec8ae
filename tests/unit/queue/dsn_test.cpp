// DSNs: MIME structure, delivery-status fields, line rules, the delayed variant, the header
// section they attach, and a real mail parser (Python's email package) reading one.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "queue/dsn.hpp"
#include "queue/rfc5322_date.hpp"
#include "support/temp_dir.hpp"

namespace relayq::queue {
namespace {

constexpr std::int64_t kReceived = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000
constexpr std::int64_t kNow = kReceived + 3'600'000;
constexpr MessageId kDsnId = 0x0123456789ABCDEF;

const std::string kOriginalHeaders =
    "Received: from client.example ([192.0.2.7])\r\n"
    "\tby relay.example.test (relayq) with ESMTP id 00000000000000AA;\r\n"
    "\tTue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Sender <sender@example.test>\r\n"
    "To: <gone@example.org>\r\n"
    "Subject: the original\r\n";

// A header block (or a delivery-status field block): fields by lower-case name, folded
// lines unfolded, plus what follows the blank line.
struct Entity {
  std::multimap<std::string, std::string> fields;
  std::string body;

  std::string get(const std::string& name) const {
    const auto it = fields.find(name);
    return it == fields.end() ? std::string() : it->second;
  }
};

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return std::string(text);
}

Entity parse_entity(std::string_view text) {
  Entity entity;
  std::string name;
  std::string value;
  auto flush = [&] {
    if (!name.empty()) entity.fields.emplace(lower(name), trim(value));
    name.clear();
    value.clear();
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find("\r\n", pos);
    const std::string_view line =
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 2;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      value.append(" ").append(trim(line));  // a folded continuation
      continue;
    }
    flush();
    const std::size_t colon = line.find(':');
    REQUIRE(colon != std::string_view::npos);
    name = line.substr(0, colon);
    value = line.substr(colon + 1);
  }
  flush();
  entity.body = text.substr(pos);
  return entity;
}

// The parameter `name` of a Content-Type value, quotes removed.
std::string parameter(const std::string& content_type, const std::string& name) {
  const std::size_t at = content_type.find(name + "=");
  if (at == std::string::npos) return {};
  std::string value = content_type.substr(at + name.size() + 1);
  value = value.substr(0, value.find(';'));
  if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
  return value;
}

// The body parts of a multipart body (RFC 2046 5.1.1), with the CRLF before each delimiter
// belonging to the delimiter.
std::vector<std::string> split_multipart(const std::string& body, const std::string& boundary) {
  const std::string delimiter = "\r\n--" + boundary;
  std::vector<std::string> parts;
  std::size_t at = body.find(delimiter);
  REQUIRE(at != std::string::npos);
  for (;;) {
    const std::size_t start = at + delimiter.size();
    if (body.compare(start, 2, "--") == 0) break;  // the close delimiter
    REQUIRE(body.compare(start, 2, "\r\n") == 0);
    const std::size_t next = body.find(delimiter, start);
    REQUIRE(next != std::string::npos);
    parts.push_back(body.substr(start + 2, next - start - 2));
    at = next;
  }
  return parts;
}

// Blocks of fields separated by blank lines (message/delivery-status, RFC 3464 2.1).
std::vector<Entity> field_blocks(const std::string& text) {
  std::vector<Entity> blocks;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find("\r\n\r\n", pos);
    end = end == std::string::npos ? text.size() : end + 2;
    blocks.push_back(parse_entity(text.substr(pos, end - pos)));
    pos = end + 2;
  }
  return blocks;
}

struct ParsedDsn {
  Entity top;
  std::vector<Entity> parts;
  std::vector<Entity> status_blocks;
};

ParsedDsn parse_dsn(const std::string& body) {
  ParsedDsn dsn;
  dsn.top = parse_entity(body);
  const std::string boundary = parameter(dsn.top.get("content-type"), "boundary");
  REQUIRE_FALSE(boundary.empty());
  for (const auto& part : split_multipart(body, boundary)) dsn.parts.push_back(parse_entity(part));
  REQUIRE(dsn.parts.size() == 3);
  dsn.status_blocks = field_blocks(dsn.parts[1].body);
  return dsn;
}

Envelope original_envelope() {
  Envelope envelope;
  envelope.id = 0xAA;
  envelope.sender = "sender@example.test";
  for (const char* address : {"gone@example.org", "slow@example.net"}) {
    envelope.recipients.emplace_back().address = address;
  }
  envelope.received_ms = kReceived;
  return envelope;
}

DsnRecipient failed_recipient() {
  return {.address = "gone@example.org",
          .action = "failed",
          .status = "5.1.1",
          .remote_mta = "mx.example.org",
          .diagnostic =
              "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
              "550 5.1.1 Please check the address.",
          .last_attempt_ms = kNow - 1000};
}

DsnRecipient delayed_recipient() {
  return {.address = "slow@example.net",
          .action = "delayed",
          .status = "4.4.1",
          .remote_mta = "",
          .diagnostic = "smtp; 451 4.4.1 connection timed out",
          .last_attempt_ms = kNow - 2000,
          .will_retry_until_ms = kReceived + 5 * 86'400'000LL};
}

Message build(const Envelope& original, std::vector<DsnRecipient> recipients,
              std::string headers = kOriginalHeaders) {
  return build_dsn({.reporting_mta = "relay.example.test",
                    .original = &original,
                    .original_headers = std::move(headers),
                    .recipients = std::move(recipients)},
                   kDsnId, kNow);
}

std::vector<std::string_view> crlf_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = body.find("\r\n", pos);
    REQUIRE(end != std::string_view::npos);  // the body ends with a CRLF
    lines.push_back(body.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

}  // namespace

TEST_CASE("RFC 5322 dates are written in UTC with English names", "[queue][dsn]") {
  CHECK(format_rfc5322_date(kReceived) == "Tue, 14 Nov 2023 22:13:20 +0000");
  CHECK(format_rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(format_rfc5322_date(951'782'400'999) == "Tue, 29 Feb 2000 00:00:00 +0000");
}

TEST_CASE("a failed DSN is a multipart/report to the original sender", "[queue][dsn]") {
  const Envelope original = original_envelope();
  const Message dsn = build(original, {failed_recipient()});

  // The envelope: from the null sender to the original sender, due at once.
  CHECK(dsn.envelope.id == kDsnId);
  CHECK(dsn.envelope.sender.empty());
  REQUIRE(dsn.envelope.recipients.size() == 1);
  CHECK(dsn.envelope.recipients[0].address == "sender@example.test");
  CHECK(dsn.envelope.recipients[0].state == RecipientState::pending);
  CHECK(dsn.envelope.received_ms == kNow);
  CHECK(dsn.envelope.size == dsn.body.size());
  CHECK(dsn.envelope.listener == "dsn");
  CHECK(dsn.envelope.client_address.empty());
  CHECK(dsn.envelope.helo.empty());
  CHECK_FALSE(dsn.envelope.eight_bit_mime);

  const ParsedDsn parsed = parse_dsn(dsn.body);
  CHECK(parsed.top.get("from") == "Mail Delivery System <MAILER-DAEMON@relay.example.test>");
  CHECK(parsed.top.get("to") == "<sender@example.test>");
  CHECK(parsed.top.get("subject") == "Undelivered Mail Returned to Sender");
  CHECK(parsed.top.get("date") == format_rfc5322_date(kNow));
  CHECK(parsed.top.get("message-id") == "<0123456789ABCDEF.dsn@relay.example.test>");
  CHECK(parsed.top.get("auto-submitted") == "auto-replied");
  CHECK(parsed.top.get("mime-version") == "1.0");
  CHECK_THAT(parsed.top.get("content-type"),
             Catch::StartsWith("multipart/report; report-type=delivery-status;"));
  CHECK_FALSE(parsed.top.fields.count("received"));

  CHECK(parsed.parts[0].get("content-type") == "text/plain; charset=us-ascii");
  CHECK_THAT(parsed.parts[0].body, Catch::Contains("<gone@example.org>: failed") &&
                                       Catch::Contains("mx.example.org said: 550-5.1.1"));
  CHECK(parsed.parts[1].get("content-type") == "message/delivery-status");
  CHECK(parsed.parts[2].get("content-type") == "text/rfc822-headers");
  CHECK(parsed.parts[2].body == kOriginalHeaders);

  REQUIRE(parsed.status_blocks.size() == 2);
  const Entity& per_message = parsed.status_blocks[0];
  CHECK(per_message.get("reporting-mta") == "dns; relay.example.test");
  CHECK(per_message.get("arrival-date") == "Tue, 14 Nov 2023 22:13:20 +0000");
  CHECK_FALSE(per_message.fields.count("original-envelope-id"));
  const Entity& recipient = parsed.status_blocks[1];
  CHECK(recipient.get("final-recipient") == "rfc822; gone@example.org");
  CHECK(recipient.get("action") == "failed");
  CHECK(recipient.get("status") == "5.1.1");
  CHECK(recipient.get("remote-mta") == "dns; mx.example.org");
  CHECK(recipient.get("diagnostic-code") ==
        "smtp; 550-5.1.1 The email account that you tried to reach does not exist. "
        "550 5.1.1 Please check the address.");
  CHECK(recipient.get("last-attempt-date") == format_rfc5322_date(kNow - 1000));
  CHECK_FALSE(recipient.fields.count("will-retry-until"));
}

TEST_CASE("a delayed DSN says it is still trying and until when", "[queue][dsn]") {
  const Envelope original = original_envelope();
  const Message dsn = build(original, {delayed_recipient()});
  const ParsedDsn parsed = parse_dsn(dsn.body);

  CHECK(parsed.top.get("subject") == "Delayed Mail (still being retried)");
  REQUIRE(parsed.status_blocks.size() == 2);
  const Entity& recipient = parsed.status_blocks[1];
  CHECK(recipient.get("action") == "delayed");
  CHECK(recipient.get("status") == "4.4.1");
  CHECK_FALSE(recipient.fields.count("remote-mta"));
  CHECK(recipient.get("diagnostic-code") == "smtp; 451 4.4.1 connection timed out");
  CHECK(recipient.get("will-retry-until") == "Sun, 19 Nov 2023 22:13:20 +0000");
  CHECK_THAT(parsed.parts[0].body, Catch::Contains("keeps trying"));
}

TEST_CASE("a diagnostic keeps its own type and defaults to smtp", "[queue][dsn]") {
  const Envelope original = original_envelope();
  DsnRecipient ours = failed_recipient();
  ours.remote_mta.clear();
  ours.diagnostic = "X-relayq; no MX for example.org (null MX)";
  DsnRecipient typed = failed_recipient();
  typed.diagnostic = "smtp;550 5.1.1 unknown";
  const Message dsn = build(original, {ours, typed});
  const ParsedDsn parsed = parse_dsn(dsn.body);
  REQUIRE(parsed.status_blocks.size() == 3);
  CHECK(parsed.status_blocks[1].get("diagnostic-code") ==
        "X-relayq; no MX for example.org (null MX)");
  CHECK(parsed.status_blocks[2].get("diagnostic-code") == "smtp; 550 5.1.1 unknown");
  // People read the text alone.
  CHECK_THAT(parsed.parts[0].body, Catch::Contains("    no MX for example.org (null MX)") &&
                                       Catch::Contains("said: 550 5.1.1 unknown") &&
                                       !Catch::Contains("smtp;"));
}

TEST_CASE("one DSN reports several recipients and any failure makes it a bounce", "[queue][dsn]") {
  const Envelope original = original_envelope();
  DsnRecipient bare;
  bare.address = "plain@example.com";
  bare.action = "failed";
  const Message dsn = build(original, {failed_recipient(), delayed_recipient(), bare});
  const ParsedDsn parsed = parse_dsn(dsn.body);
  CHECK(parsed.top.get("subject") == "Undelivered Mail Returned to Sender");
  REQUIRE(parsed.status_blocks.size() == 4);
  CHECK(parsed.status_blocks[1].get("action") == "failed");
  CHECK(parsed.status_blocks[2].get("action") == "delayed");
  // No status given: the generic one of the action; no diagnostic or attempt: no such fields.
  CHECK(parsed.status_blocks[3].get("status") == "5.0.0");
  CHECK_FALSE(parsed.status_blocks[3].fields.count("diagnostic-code"));
  CHECK_FALSE(parsed.status_blocks[3].fields.count("last-attempt-date"));
}

TEST_CASE("every DSN line ends in CRLF and none is longer than 998 bytes", "[queue][dsn]") {
  const Envelope original = original_envelope();
  DsnRecipient long_word = failed_recipient();
  long_word.diagnostic = "550 5.7.1 " + std::string(1500, 'x') + "\n\tcontrol\x01 8-bit \xff";
  DsnRecipient many_lines = failed_recipient();
  many_lines.diagnostic.clear();
  for (int i = 0; i < 60; ++i) many_lines.diagnostic += "550-5.7.1 a rather long explanation\r\n";
  // Stored bodies never hold these, but the DSN must not depend on it.
  const std::string headers = kOriginalHeaders + "X-Long: " + std::string(1200, 'y') +
                              "\r\nX-Bare: lf\nX-Bare-Cr: a\rb\r\n";
  const Message dsn = build(original, {long_word, many_lines}, headers);

  for (const auto line : crlf_lines(dsn.body)) {
    CHECK(line.size() <= 998);
    CHECK(line.find('\r') == std::string_view::npos);
    CHECK(line.find('\n') == std::string_view::npos);
  }
  const ParsedDsn parsed = parse_dsn(dsn.body);
  REQUIRE(parsed.status_blocks.size() == 3);
  // A word too long for a line is cut; controls become spaces, 8-bit bytes '?'.
  const std::string cut = parsed.status_blocks[1].get("diagnostic-code");
  CHECK(cut == "smtp; 550 5.7.1 " + std::string(997, 'x') + " control 8-bit ?");
  // A reply of many lines is folded, and cut short at 2000 bytes.
  const std::string folded = parsed.status_blocks[2].get("diagnostic-code");
  CHECK_THAT(folded, Catch::StartsWith("smtp; 550-5.7.1 a rather long explanation 550-5.7.1"));
  CHECK_THAT(folded, Catch::EndsWith(" ..."));
  CHECK(folded.size() < 2100);
  CHECK(std::count(dsn.body.begin(), dsn.body.end(), '\n') > 30);
}

TEST_CASE("addresses from a damaged queue record stay on their line", "[queue][dsn]") {
  // No session stores such addresses; found by fuzzing stored records (queue_record_fuzz).
  Envelope original = original_envelope();
  original.sender = "sender@example.test\r\nBcc: victim@example.org" + std::string(1200, 's');
  DsnRecipient recipient = failed_recipient();
  recipient.address = std::string("gone@example.org\n") + '\0' + "X-Injected: yes";
  const Message dsn = build(original, {recipient});

  for (const auto line : crlf_lines(dsn.body)) {
    CHECK(line.size() <= 998);
    CHECK(line.find('\n') == std::string_view::npos);
    CHECK_FALSE(line.starts_with("Bcc:"));
    CHECK_FALSE(line.starts_with("X-Injected:"));
  }
  const ParsedDsn parsed = parse_dsn(dsn.body);
  REQUIRE(parsed.status_blocks.size() == 2);
  CHECK(parsed.status_blocks[1].get("final-recipient") ==
        "rfc822; gone@example.org??X-Injected: yes");
}

TEST_CASE("the DSN boundary never occurs in the attached headers", "[queue][dsn]") {
  const Envelope original = original_envelope();
  const std::string planted =
      kOriginalHeaders + "X-Trap: --=_relayq_dsn_" + format_id(kDsnId) + "\r\n";
  const Message dsn = build(original, {failed_recipient()}, planted);
  const ParsedDsn parsed = parse_dsn(dsn.body);
  CHECK(parsed.parts[2].body == planted);
  CHECK(parameter(parsed.top.get("content-type"), "boundary") !=
        "=_relayq_dsn_" + format_id(kDsnId));
}

TEST_CASE("a DSN attaching 8-bit headers says so and asks for 8BITMIME", "[queue][dsn]") {
  Envelope original = original_envelope();
  original.smtputf8 = true;
  const Message dsn =
      build(original, {failed_recipient()}, kOriginalHeaders + "X-Name: J\xc3\xbcrgen\r\n");
  CHECK(dsn.envelope.eight_bit_mime);
  CHECK(dsn.envelope.smtputf8);
  const ParsedDsn parsed = parse_dsn(dsn.body);
  CHECK(parsed.parts[2].get("content-transfer-encoding") == "8bit");
}

TEST_CASE("build_dsn refuses to bounce a bounce", "[queue][dsn]") {
  Envelope original = original_envelope();
  original.sender.clear();
  CHECK_THROWS_AS(build(original, {failed_recipient()}), std::invalid_argument);
  DsnRequest without_original;
  without_original.reporting_mta = "relay.example.test";
  CHECK_THROWS_AS(build_dsn(without_original, kDsnId, kNow), std::invalid_argument);
}

TEST_CASE("header_section takes the lines before the blank line", "[queue][dsn]") {
  CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore\r\n") == "A: 1\r\nB: 2\r\n");
  CHECK(header_section("A: 1\r\n folded\r\n\r\n") == "A: 1\r\n folded\r\n");
  CHECK(header_section("\r\nbody only\r\n") == "");
  CHECK(header_section("A: 1\r\nB: 2\r\n") == "A: 1\r\nB: 2\r\n");
  CHECK(header_section("") == "");
}

TEST_CASE("header_section stops at 64 KiB after a whole line", "[queue][dsn]") {
  const std::string line = "X-Filler: " + std::string(88, 'f') + "\r\n";  // 100 bytes
  std::string headers;
  while (headers.size() < 70'000) headers += line;
  const std::string section = header_section(headers + "\r\nbody\r\n");
  CHECK(section.size() == 65'500);  // 655 whole lines; the 656th would end past 65536
  CHECK(section == headers.substr(0, 65'500));

  // A line ending exactly at the cap is kept.
  const std::string exact = std::string(65'534, 'e') + "\r\n";
  CHECK(header_section(exact + line + "\r\n") == exact);
}

TEST_CASE("Python's email package reads a DSN as multipart/report with its status fields",
          "[queue][dsn][python]") {
  const Envelope original = original_envelope();
  DsnRecipient wordy = failed_recipient();
  wordy.diagnostic += "\r\n550 5.1.1 " + std::string(200, 'z') + " and some more words";
  const Message dsn = build(original, {wordy, delayed_recipient()});

  test::TempDir dir;
  const auto file = dir.path / "dsn.eml";
  std::ofstream(file, std::ios::binary) << dsn.body;
  const auto script = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                      "support" / "parse_dsn.py";
  const std::string command = "/usr/bin/python3 " + script.string() + " " + file.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  INFO(output);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(output ==
        R"({"recipients": [{"action": "failed", "diagnostic_code": "smtp; 550-5.1.1 The email )"
        R"(account that you tried to reach does not exist. 550 5.1.1 Please check the )"
        R"(address. 550 5.1.1 )" +
            std::string(200, 'z') +
            R"( and some more words", "final_recipient": "rfc822; gone@example.org", )"
            R"("status": "5.1.1"}, {"action": "delayed", "diagnostic_code": "smtp; 451 4.4.1 )"
            R"(connection timed out", "final_recipient": "rfc822; slow@example.net", )"
            R"("status": "4.4.1"}]})"
            "\n");
}

}  // namespace relayq::queue
