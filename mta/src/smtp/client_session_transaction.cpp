// The client session's transactions: MAIL, RCPT and DATA pipelined when the server allows,
// the content dot-stuffed, and the replies that settle each recipient (over LMTP, one per
// accepted recipient after the content). The session's thread only; no I/O.
#include "smtp/client_session_impl.hpp"

#include <algorithm>

namespace relayq::mta {

// Only clears what a cut-short transaction left: its reply does not matter unless the server
// is going away.
void ClientSession::Impl::on_rset(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  if (!tx.pipelined) write_mail();
}

void ClientSession::Impl::on_mail(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  if (!reply.success()) {
    settle(reply);
    // Pipelined RCPT and DATA replies are still to come; they change nothing.
    if (!tx.pipelined) end_transaction(true);
    return;
  }
  if (!tx.pipelined) write_rcpt();
}

void ClientSession::Impl::on_rcpt(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  Recipient& recipient = tx.recipients[tx.rcpts_answered++];
  // A probe keeps every RCPT reply: an accepted one is its answer too.
  if ((!reply.success() || tx.message.probe) && !recipient.settled)
    recipient = {std::move(reply), true};
  if (tx.pipelined) {
    if (tx.message.probe && tx.rcpts_answered == tx.recipients.size()) end_transaction(true);
    return;
  }
  if (tx.rcpts_written < tx.recipients.size()) return write_rcpt();
  if (!any_unsettled()) return end_transaction(true);
  command(Step::data, "DATA");
}

void ClientSession::Impl::on_data(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  if (reply.code != 354) {
    settle(reply);
    return end_transaction(true);
  }
  if (any_unsettled()) {
    append_dot_stuffed(tx.message.body ? std::string_view(*tx.message.body) : "", output);
  } else {
    // DATA was pipelined and accepted although no recipient was: end it empty (RFC 2920 3.1).
    output.append(".\r\n");
  }
  tx.writing_content = true;
  // Over LMTP every accepted recipient gets a reply of its own (RFC 2033 4.2).
  tx.lmtp_replies = 0;
  if (config->lmtp) {
    for (const Recipient& recipient : tx.recipients) tx.lmtp_replies += !recipient.settled;
  }
  for (std::size_t i = 0; i < std::max<std::size_t>(tx.lmtp_replies, 1); ++i)
    awaited.push_back(Step::data_end);
}

void ClientSession::Impl::on_data_end(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  if (tx.lmtp_replies > 0) {
    settle_next(std::move(reply));
    if (--tx.lmtp_replies > 0) return;
    return end_transaction(false);
  }
  // After the empty content that closed a DATA no recipient needed, start afresh too.
  const bool delivered = any_unsettled();
  settle(reply);
  end_transaction(!delivered);
}

// --- Transactions ------------------------------------------------------------------------

void ClientSession::Impl::start(OutboundMessage message) {
  const std::size_t size = message.body ? message.body->size() : 0;
  if (extensions.size_limit && size > *extensions.size_limit)
    return refuse_all(message, local_refusal(Reply::remote_size_limit));
  if (message.smtputf8 && !extensions.smtputf8)
    return refuse_all(message, local_refusal(Reply::remote_no_smtputf8));
  if (message.recipients.empty()) {
    result = TransactionResult{};
    return;
  }
  tx = Transaction{};
  tx.recipients.resize(message.recipients.size());
  tx.message = std::move(message);
  tx.pipelined = extensions.pipelining;
  enter_state(ClientState::busy);
  if (std::exchange(cut_short, false)) {
    command(Step::rset, "RSET");
    if (!tx.pipelined) return;
  }
  write_mail();
  if (!tx.pipelined) return;
  // One write for the whole group (RFC 2920 3.1): DATA is where a group must end.
  while (tx.rcpts_written < tx.recipients.size()) write_rcpt();
  if (!tx.message.probe) command(Step::data, "DATA");
}

void ClientSession::Impl::refuse_all(const OutboundMessage& message, const SmtpReply& reply) {
  result = TransactionResult{std::vector<SmtpReply>(message.recipients.size(), reply)};
}

void ClientSession::Impl::write_mail() {
  const OutboundMessage& message = tx.message;
  if (!awaiting()) since_ms = now_ms;
  output.append("MAIL FROM:<").append(message.sender).append(">");
  if (extensions.size) {
    std::array<char, 24> digits{};
    const std::size_t size = message.body ? message.body->size() : 0;
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), size).ptr;
    output.append(" SIZE=").append(digits.data(), end);
  }
  // Without 8BITMIME the content goes as it is, like most MTAs do, rather than bouncing.
  if (message.eight_bit_mime && extensions.eight_bit_mime) output.append(" BODY=8BITMIME");
  if (message.smtputf8) output.append(" SMTPUTF8");
  output.append("\r\n");
  awaited.push_back(Step::mail);
}

void ClientSession::Impl::write_rcpt() {
  const std::string& recipient = tx.message.recipients[tx.rcpts_written++];
  if (!awaiting()) since_ms = now_ms;
  output.append("RCPT TO:<").append(recipient).append(">\r\n");
  awaited.push_back(Step::rcpt);
}

bool ClientSession::Impl::any_unsettled() const {
  for (const Recipient& recipient : tx.recipients)
    if (!recipient.settled) return true;
  return false;
}

// Gives `reply` to every recipient whose fate is still open.
void ClientSession::Impl::settle(const SmtpReply& reply) {
  for (Recipient& recipient : tx.recipients) {
    if (recipient.settled) continue;
    recipient.reply = reply;
    recipient.settled = true;
  }
}

// Gives `reply` to the first recipient whose fate is still open (LMTP's replies come in the
// order of the accepted RCPTs).
void ClientSession::Impl::settle_next(SmtpReply reply) {
  for (Recipient& recipient : tx.recipients) {
    if (recipient.settled) continue;
    recipient = {std::move(reply), true};
    return;
  }
}

void ClientSession::Impl::end_transaction(bool was_cut_short) {
  TransactionResult done;
  done.recipients.reserve(tx.recipients.size());
  for (Recipient& recipient : tx.recipients) done.recipients.push_back(std::move(recipient.reply));
  result = std::move(done);
  cut_short = was_cut_short;
  enter_state(ClientState::idle);
}

}  // namespace relayq::mta
