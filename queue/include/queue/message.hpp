// A queued message: its envelope with per-recipient delivery state, and its body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relayq::queue {

// Message ids are 64-bit, time-ordered (milliseconds << 20 | counter: a million ids per
// millisecond before borrowing from the next one), shown as 16 hex digits.
using MessageId = std::uint64_t;
constexpr int kIdTimeShift = 20;

std::string format_id(MessageId id);
// The wall-clock millisecond an id was made in (its reception time).
constexpr std::int64_t id_time_ms(MessageId id) {
  return static_cast<std::int64_t>(id >> kIdTimeShift);
}
std::optional<MessageId> parse_id(std::string_view text);

enum class RecipientState : std::uint8_t { pending = 0, delivered = 1, bounced = 2 };

std::string_view to_string(RecipientState state);

// One delivery attempt for one recipient, kept for `relayq queue show`.
struct Attempt {
  std::int64_t time_ms = 0;  // wall clock, ms since the epoch
  std::string nexthop;       // "host[ip]:port" or empty when no connection was made
  std::string reply;         // the remote reply, or our own description of the failure
  // How the connection was protected: "TLSv1.3 TLS_AES_256_GCM_SHA384 verified" (or
  // "unverified"), empty for plaintext.
  std::string tls;
  // What kind of failure the reply was ("bad_mailbox", "rate_limit", ...: mta's
  // ReplyCategory); empty for a success, and in records older than the classification.
  std::string category;
  bool operator==(const Attempt&) const = default;
};

struct Recipient {
  std::string address;
  RecipientState state = RecipientState::pending;
  std::uint32_t attempts = 0;
  std::string last_reply;
  std::int64_t next_attempt_ms = 0;  // wall clock; 0 = due now
  std::vector<Attempt> history;
  // The retry rule that set next_attempt_ms: the [retry.domains."x"] domain, empty for the
  // default [retry] (and in records written before it was kept).
  std::string retry_rule;
  bool operator==(const Recipient&) const = default;
};

struct Envelope {
  MessageId id = 0;
  std::string sender;  // empty for the null sender <>
  std::vector<Recipient> recipients;
  std::int64_t received_ms = 0;  // wall clock at reception
  std::string listener;          // listener address the message came in on
  std::string client_address;    // peer IP as text
  std::string helo;              // the HELO/EHLO argument
  bool eight_bit_mime = false;   // BODY=8BITMIME was given
  bool smtputf8 = false;         // SMTPUTF8 was given
  std::uint64_t size = 0;        // body size in bytes, Received header included
  bool held = false;             // an operator put it on hold
  // The sender has had its "delayed" DSN (kept so that a restart does not send a second one).
  bool delay_warned = false;
  // Some recipient still waits for delivery: the message stays in the queue.
  bool has_pending() const;
  bool operator==(const Envelope&) const = default;
};

struct Message {
  Envelope envelope;
  std::string body;  // CRLF lines, dot-unstuffed, Received header first
};

}  // namespace relayq::queue
