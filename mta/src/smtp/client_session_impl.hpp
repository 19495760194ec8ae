// The client session's state, shared by the files that implement it: client_session.cpp (input,
// the greeting, EHLO and STARTTLS, state and the public API) and client_session_transaction.cpp
// (MAIL, RCPT, DATA and their replies). The session's thread only, whichever the host runs it
// on; no I/O.
#pragma once

#include <array>
#include <charconv>
#include <limits>
#include <utility>

#include "mta/smtp/client_session.hpp"
#include "mta/smtp/dot_stuffer.hpp"
#include "mta/smtp/ehlo_keywords.hpp"
#include "mta/smtp/replies.hpp"
#include "mta/smtp/reply_parser.hpp"

namespace relayq::mta {

// What a reply answers; Impl::kSteps holds one row per value, in this order.
enum class Step : std::uint8_t {
  greeting,
  ehlo,
  helo,
  starttls,
  rset,
  mail,
  rcpt,
  data,
  data_end,
  quit
};

// A refusal made up here, standing for the next hop's: it bounces like the server's would.
inline SmtpReply local_refusal(Reply reply) {
  return {reply_row(reply).code, format_reply(reply)};
}

inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

struct ClientSession::Impl {
  // How long a reply may take (RFC 5321 4.5.3.2), how a timeout names it, and its handler.
  struct StepRule {
    std::chrono::milliseconds ClientSessionConfig::*timeout;
    std::string_view name;
    void (Impl::*on_reply)(SmtpReply reply);
  };

  struct Recipient {
    SmtpReply reply;
    bool settled = false;  // its fate is known: a refused RCPT, a failed MAIL, or the end
  };

  // One message, from send() to its result.
  struct Transaction {
    OutboundMessage message;
    std::vector<Recipient> recipients;
    bool pipelined = false;
    std::size_t rcpts_written = 0;
    std::size_t rcpts_answered = 0;
    bool writing_content = false;  // after 354, until the host has written all the content
    // LMTP: end-of-data replies still to come, one per recipient accepted at RCPT.
    std::size_t lmtp_replies = 0;
  };

  explicit Impl(std::shared_ptr<const ClientSessionConfig> config) : config(std::move(config)) {}

  // Input.
  void receive(std::string_view bytes);
  void on_reply(SmtpReply reply);
  void on_unsolicited(SmtpReply reply);

  // Reply handlers, one per row of kSteps.
  void on_greeting(SmtpReply reply);
  void on_ehlo(SmtpReply reply);
  void on_helo(SmtpReply reply);
  void on_starttls(SmtpReply reply);
  void on_rset(SmtpReply reply);
  void on_mail(SmtpReply reply);
  void on_rcpt(SmtpReply reply);
  void on_data(SmtpReply reply);
  void on_data_end(SmtpReply reply);
  void on_quit(SmtpReply reply);

  // Between the greeting and idle.
  void greeted();

  // Transactions.
  void start(OutboundMessage message);
  void refuse_all(const OutboundMessage& message, const SmtpReply& reply);
  void write_mail();
  void write_rcpt();
  bool any_unsettled() const;
  void settle(const SmtpReply& reply);
  void settle_next(SmtpReply reply);
  void end_transaction(bool was_cut_short);

  // Output, deadlines and state.
  void command(Step step, std::string_view verb, std::string_view argument = {});
  void write_line(std::string_view verb, std::string_view argument = {});
  void refuse_setup(SmtpReply reply);
  void close_with(SmtpReply reason);
  void enter_state(ClientState next);
  bool awaiting() const { return head < awaited.size(); }
  const StepRule& current_rule() const { return kSteps[static_cast<std::size_t>(awaited[head])]; }
  std::int64_t deadline() const;
  std::string_view awaited_name() const;

  static const std::array<StepRule, 10> kSteps;

  std::shared_ptr<const ClientSessionConfig> config;
  ClientState state = ClientState::connecting;
  ServerExtensions extensions;
  std::optional<SmtpReply> setup_failure;
  bool tls_active = false;
  bool starttls_accepted = false;  // the 220 to STARTTLS came, take_starttls() not yet called
  ReplyParser parser;
  // The steps whose replies are awaited, in order: several when pipelining. A vector read
  // from `head` and cleared when drained keeps its capacity from message to message.
  std::vector<Step> awaited;
  std::size_t head = 0;
  std::int64_t since_ms = 0;  // when the reply at `head` started being awaited
  Transaction tx;
  bool cut_short = false;  // the last transaction ended without end of data: RSET first
  std::string output;
  std::size_t unwritten_outputs = 0;  // taken by the host, output_written() not yet called
  std::optional<TransactionResult> result;
  std::int64_t now_ms = 0;
  StateTrace trace;
};

}  // namespace relayq::mta
