// The reply table: one row per Reply, in the enum's order (checked when compiled).
#include "mta/smtp/replies.hpp"

#include <array>

namespace relayq::mta {

namespace {

using metrics::RejectReason;
using enum Reply;

constexpr std::array kRows = {
    ReplyRow{greeting, 220, "", "{} ESMTP relayq", {}},
    ReplyRow{helo, 250, "", "{}", {}},
    ReplyRow{bye, 221, "2.0.0", "Bye", {}},
    ReplyRow{help, 214, "2.0.0", "Commands:{}", {}},
    ReplyRow{ok, 250, "2.0.0", "Ok", {}},
    ReplyRow{cannot_vrfy,
             252,
             "2.5.0",
             "Cannot VRFY user, but will accept message and attempt delivery",
             {}},
    ReplyRow{unrecognized, 500, "5.5.1", "Command unrecognized", {}},
    ReplyRow{line_too_long, 500, "5.5.2", "Line too long", {}},
    ReplyRow{malformed_line,
             500,
             "5.5.2",
             "Command lines must end in CRLF and hold no bare CR or NUL",
             {}},
    ReplyRow{not_implemented, 502, "5.5.1", "Command not implemented", {}},
    ReplyRow{syntax, 501, "5.5.4", "Syntax: {}", {}},
    ReplyRow{need_helo, 503, "5.5.1", "Error: send HELO/EHLO first", {}},
    ReplyRow{need_mail, 503, "5.5.1", "Error: need MAIL command", {}},
    ReplyRow{nested_mail, 503, "5.5.1", "Error: nested MAIL command", {}},
    ReplyRow{rcpt_after_bdat, 503, "5.5.1", "Error: RCPT after BDAT", {}},
    ReplyRow{data_after_bdat, 503, "5.5.1", "Error: DATA and BDAT cannot be mixed", {}},
    ReplyRow{no_recipients, 554, "5.5.1", "No valid recipients", {}},
    ReplyRow{sender_ok, 250, "2.1.0", "Ok", {}},
    ReplyRow{recipient_ok, 250, "2.1.5", "Ok", {}},
    ReplyRow{bad_sender, 501, "5.1.7", "Bad sender address syntax", {}},
    ReplyRow{bad_recipient, 501, "5.1.3", "Bad recipient address syntax", {}},
    ReplyRow{recipient_needs_domain, 501, "5.1.3", "Recipient address must include a domain", {}},
    ReplyRow{bad_size_parameter, 501, "5.5.4", "Bad SIZE parameter", {}},
    ReplyRow{bad_body_parameter, 501, "5.5.4", "Bad BODY parameter", {}},
    ReplyRow{bad_smtputf8_parameter, 501, "5.5.4", "Bad SMTPUTF8 parameter", {}},
    ReplyRow{unsupported_option, 555, "5.5.4", "Unsupported option: {}", {}},
    ReplyRow{needs_smtputf8, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8", {}},
    ReplyRow{too_many_recipients, 452, "4.5.3", "Too many recipients",
             RejectReason::too_many_recipients},
    ReplyRow{relay_denied, 554, "5.7.1", "Relay access denied", RejectReason::relay_denied},
    ReplyRow{routing_denied, 550, "5.7.1",
             "Relay access denied: no routing ('%', '!', '@') in the local part",
             RejectReason::relay_denied},
    ReplyRow{start_data, 354, "", "End data with <CR><LF>.<CR><LF>", {}},
    ReplyRow{chunk_received, 250, "2.0.0", "{} octets received", {}},
    ReplyRow{message_too_big, 552, "5.3.4", "Message size exceeds fixed maximum message size",
             RejectReason::size},
    ReplyRow{header_too_big, 552, "5.3.4", "Message header section exceeds fixed maximum size",
             RejectReason::size},
    ReplyRow{text_line_too_long, 500, "5.5.2", "Text line too long", RejectReason::line_too_long},
    ReplyRow{bad_data, 550, "5.6.0", "Message contains bare CR, bare LF or NUL",
             RejectReason::bad_data},
    ReplyRow{queued, 250, "2.0.0", "Ok: queued as {}", {}},
    ReplyRow{storage_full, 452, "4.3.1", "Insufficient system storage", RejectReason::storage},
    ReplyRow{storage_failed, 451, "4.3.0", "Temporary storage failure, try again later",
             RejectReason::storage},
    ReplyRow{storage_stopping, 421, "4.3.2", "Service shutting down", RejectReason::storage},
    ReplyRow{timeout, 421, "4.4.2", "{} Error: timeout exceeded", RejectReason::timeout},
    ReplyRow{shutting_down, 421, "4.3.2", "{} Service shutting down", {}},
    ReplyRow{too_many_errors, 421, "4.7.0", "{} Too many errors, closing connection", {}},
    ReplyRow{too_many_junk_commands,
             421,
             "4.7.0",
             "{} Too many commands without mail, closing connection",
             {}},
    ReplyRow{too_many_connections, 421, "4.3.2", "{} Too many connections, try again later", {}},
    ReplyRow{client_too_many_connections,
             421,
             "4.7.0",
             "{} Too many connections from your address, try again later",
             {}},
    ReplyRow{client_too_many_per_minute,
             421,
             "4.7.0",
             "{} Too many connections from your address this minute, try again later",
             {}},
    ReplyRow{starttls_ready, 220, "2.0.0", "Ready to start TLS", {}},
    ReplyRow{tls_active, 503, "5.5.1", "Error: TLS already active", {}},
    ReplyRow{starttls_pipelined, 554, "5.5.1", "Error: nothing may follow STARTTLS before TLS", {}},
    ReplyRow{auth_challenge, 334, "", "{}", {}},
    ReplyRow{auth_ok, 235, "2.7.0", "Authentication successful", {}},
    ReplyRow{auth_failed, 535, "5.7.8", "Authentication credentials invalid", {}},
    ReplyRow{auth_bad_base64, 501, "5.5.2", "Cannot decode the authentication response", {}},
    ReplyRow{auth_cancelled, 501, "5.0.0", "Authentication cancelled", {}},
    ReplyRow{auth_unknown_mechanism, 504, "5.5.4", "Unrecognized authentication mechanism", {}},
    ReplyRow{auth_needs_tls,
             538,
             "5.7.11",
             "Encryption required for requested authentication mechanism",
             {}},
    ReplyRow{already_authenticated, 503, "5.5.1", "Error: already authenticated", {}},
    ReplyRow{auth_throttled,
             454,
             "4.7.0",
             "Too many failed authentication attempts, try again later",
             {}},
    ReplyRow{
        auth_unavailable, 454, "4.7.0", "Temporary authentication failure, try again later", {}},
    ReplyRow{auth_too_many_failures,
             421,
             "4.7.0",
             "{} Too many failed authentication attempts, closing",
             {}},
    ReplyRow{auth_required, 530, "5.7.0", "Authentication required", RejectReason::auth_required},
    ReplyRow{spf_failed, 550, "5.7.23", "{}", RejectReason::spf},
    ReplyRow{spf_temporary, 451, "4.7.24",
             "SPF check of the sender failed temporarily, try again later", RejectReason::spf},
    ReplyRow{rdns_failed, 550, "5.7.25",
             "Client address {} has no forward-confirmed reverse DNS name", RejectReason::rdns},
    ReplyRow{rdns_temporary, 450, "4.7.25",
             "Reverse DNS of client address {} failed temporarily, try again later",
             RejectReason::rdns},
    ReplyRow{unknown_recipient, 550, "5.1.1", "<{}>: Recipient address rejected: no such user",
             RejectReason::unknown_recipient},
    ReplyRow{recipient_temporary, 450, "4.2.0",
             "<{}>: Recipient address rejected: the mailbox server says try again later",
             RejectReason::unverified_recipient},
    ReplyRow{recipient_unverifiable, 451, "4.4.3",
             "<{}>: Recipient address rejected: the mailbox server cannot be reached, try again "
             "later",
             RejectReason::unverified_recipient},
    ReplyRow{remote_size_limit, 552, "5.3.4", "Message size exceeds remote limit", {}},
    ReplyRow{remote_no_smtputf8, 553, "5.6.7", "Remote server does not support SMTPUTF8", {}},
};

constexpr bool rows_in_order() {
  for (std::size_t i = 0; i < kRows.size(); ++i)
    if (static_cast<std::size_t>(kRows[i].reply) != i) return false;
  return kRows.size() == static_cast<std::size_t>(remote_no_smtputf8) + 1;
}
static_assert(rows_in_order(), "kRows holds one row per Reply, in the enum's order");

}  // namespace

const ReplyRow& reply_row(Reply reply) {
  return kRows[static_cast<std::size_t>(reply)];
}

void append_reply(std::string& out, Reply reply, std::string_view argument) {
  const ReplyRow& row = reply_row(reply);
  const char code[] = {static_cast<char>('0' + row.code / 100),
                       static_cast<char>('0' + row.code / 10 % 10),
                       static_cast<char>('0' + row.code % 10), ' '};
  out.append(code, sizeof code);
  if (!row.enhanced.empty()) {
    out.append(row.enhanced);
    out += ' ';
  }
  const std::size_t slot = row.text.find("{}");
  if (slot == std::string_view::npos) {
    out.append(row.text);
  } else {
    out.append(row.text.substr(0, slot));
    out.append(argument);
    out.append(row.text.substr(slot + 2));
  }
}

std::string format_reply(Reply reply, std::string_view argument) {
  std::string text;
  append_reply(text, reply, argument);
  return text;
}

Reply reply_for(queue::StoreErrorKind error) {
  switch (error) {
    case queue::StoreErrorKind::none:
      return queued;
    case queue::StoreErrorKind::no_space:
      return storage_full;
    case queue::StoreErrorKind::shutting_down:
      return storage_stopping;
    case queue::StoreErrorKind::io_error:
      break;
  }
  return storage_failed;
}

}  // namespace relayq::mta
