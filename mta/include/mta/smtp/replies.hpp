// Every reply relayq makes up in an SMTP dialogue, one row each: code, enhanced status code
// (RFC 3463), text, and, for a refusal that dashboards count, the `reason` label of
// relayq_messages_rejected_total, so that reply and metric cannot drift apart. No I/O, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/labels.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

enum class Reply : std::uint8_t {
  // Greetings, and what every command may get.
  greeting,         // 220 {hostname} ESMTP relayq
  helo,             // 250 {hostname}
  bye,              // 221
  help,             // 214, the verbs follow
  ok,               // 250 2.0.0
  cannot_vrfy,      // 252
  unrecognized,     // 500 5.5.1
  line_too_long,    // 500 5.5.2, a command line
  malformed_line,   // 500 5.5.2
  not_implemented,  // 502
  syntax,           // 501 5.5.4 Syntax: {usage}
  // Sequence (RFC 5321 4.1.4).
  need_helo,        // 503
  need_mail,        // 503
  nested_mail,      // 503
  rcpt_after_bdat,  // 503
  data_after_bdat,  // 503
  no_recipients,    // 554 5.5.1
  // MAIL and RCPT.
  sender_ok,               // 250 2.1.0
  recipient_ok,            // 250 2.1.5
  bad_sender,              // 501 5.1.7
  bad_recipient,           // 501 5.1.3
  recipient_needs_domain,  // 501 5.1.3
  bad_size_parameter,      // 501 5.5.4
  bad_body_parameter,      // 501 5.5.4
  bad_smtputf8_parameter,  // 501 5.5.4
  unsupported_option,      // 555 5.5.4 Unsupported option: {keyword}
  needs_smtputf8,          // 553 5.6.7
  too_many_recipients,     // 452 4.5.3                      reason too_many_recipients
  relay_denied,            // 554 5.7.1                      reason relay_denied
  routing_denied,          // 550 5.7.1 (%, ! or @ routing)  reason relay_denied
  // Content.
  start_data,          // 354
  chunk_received,      // 250 2.0.0 {octets} octets received
  message_too_big,     // 552 5.3.4                      reason size
  header_too_big,      // 552 5.3.4                      reason size
  text_line_too_long,  // 500 5.5.2                      reason line_too_long
  bad_data,            // 550 5.6.0                      reason bad_data
  // The store's verdict (queue::StoreErrorKind).
  queued,            // 250 2.0.0 Ok: queued as {id}
  storage_full,      // 452 4.3.1                      reason storage
  storage_failed,    // 451 4.3.0                      reason storage
  storage_stopping,  // 421 4.3.2                      reason storage
  // The connection ends.
  timeout,                 // 421 4.4.2 {hostname} ...       reason timeout, within a transaction
  shutting_down,           // 421 4.3.2 {hostname} ...
  too_many_errors,         // 421 4.7.0 {hostname} ..., and the connection closes
  too_many_junk_commands,  // 421 4.7.0 {hostname} ..., and the connection closes
  too_many_connections,    // 421 4.3.2 {hostname} ...
  client_too_many_connections,  // 421 4.7.0 {hostname} ..., from one client address
  client_too_many_per_minute,   // 421 4.7.0 {hostname} ..., from one client address
  // STARTTLS (RFC 3207).
  starttls_ready,      // 220 2.0.0
  tls_active,          // 503 5.5.1
  starttls_pipelined,  // 554 5.5.1, and the connection closes
  // AUTH (RFC 4954).
  auth_challenge,          // 334 {base64}
  auth_ok,                 // 235 2.7.0
  auth_failed,             // 535 5.7.8
  auth_bad_base64,         // 501 5.5.2
  auth_cancelled,          // 501 5.0.0
  auth_unknown_mechanism,  // 504 5.5.4
  auth_needs_tls,          // 538 5.7.11
  already_authenticated,   // 503 5.5.1
  auth_throttled,          // 454 4.7.0
  auth_unavailable,        // 454 4.7.0, the password could not be checked now
  auth_too_many_failures,  // 421 4.7.0 {hostname} ..., and the connection closes
  auth_required,           // 530 5.7.0                      reason auth_required
  // The host's checks of the client and sender (RFC 7372 codes).
  spf_failed,      // 550 5.7.23 {explanation}         reason spf
  spf_temporary,   // 451 4.7.24                        reason spf
  rdns_failed,     // 550 5.7.25 {client address}      reason rdns
  rdns_temporary,  // 450 4.7.25 {client address}      reason rdns
  // The host's verification of a recipient in one of our domains (RecipientVerifier).
  unknown_recipient,       // 550 5.1.1 <{recipient}>        reason unknown_recipient
  recipient_temporary,     // 450 4.2.0 <{recipient}>        reason unverified_recipient
  recipient_unverifiable,  // 451 4.4.3 <{recipient}>        reason unverified_recipient
  // Made up for a recipient by the client session, standing for the next hop's refusal.
  remote_size_limit,   // 552 5.3.4
  remote_no_smtputf8,  // 553 5.6.7
};

struct ReplyRow {
  Reply reply;
  int code;
  std::string_view enhanced;  // empty where RFC 3463 has none (220, 354, the HELO 250)
  std::string_view text;      // "{}" stands for the argument of format_reply()
  std::optional<metrics::RejectReason> reason;
};

const ReplyRow& reply_row(Reply reply);

// "CODE ENHANCED TEXT" with `argument` in place of "{}", without CRLF, appended to `out`: the
// session writes its replies straight into its output, with no string of their own.
void append_reply(std::string& out, Reply reply, std::string_view argument = {});
// The same as a string of its own.
std::string format_reply(Reply reply, std::string_view argument = {});

// The reply to a store's verdict on a message.
Reply reply_for(queue::StoreErrorKind error);

}  // namespace relayq::mta
