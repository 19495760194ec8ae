// The outbound SMTP client session: the awaited replies as a table of steps, one handler per
// step, and one enter_state() through which every change of state goes. STARTTLS (RFC 3207)
// is a step of the greeting; the handshake itself is the host's. A session is used only on
// the loop thread of the connection that owns it.
#include "mta/smtp/client_session.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

#include "mta/smtp/dot_stuffer.hpp"
#include "mta/smtp/ehlo_keywords.hpp"
#include "mta/smtp/replies.hpp"
#include "mta/smtp/reply_parser.hpp"

namespace relayq::mta {

namespace {

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
SmtpReply local_refusal(Reply reply) {
  return {reply_row(reply).code, format_reply(reply)};
}

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

}  // namespace

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

// Indexed by Step.
const std::array<ClientSession::Impl::StepRule, 10> ClientSession::Impl::kSteps = {{
    {&ClientSessionConfig::greeting_timeout, "greeting", &Impl::on_greeting},
    {&ClientSessionConfig::command_timeout, "EHLO reply", &Impl::on_ehlo},
    {&ClientSessionConfig::command_timeout, "HELO reply", &Impl::on_helo},
    {&ClientSessionConfig::command_timeout, "STARTTLS reply", &Impl::on_starttls},
    {&ClientSessionConfig::command_timeout, "RSET reply", &Impl::on_rset},
    {&ClientSessionConfig::command_timeout, "MAIL reply", &Impl::on_mail},
    {&ClientSessionConfig::command_timeout, "RCPT reply", &Impl::on_rcpt},
    {&ClientSessionConfig::data_init_timeout, "DATA reply", &Impl::on_data},
    {&ClientSessionConfig::data_end_timeout, "end of data reply", &Impl::on_data_end},
    {&ClientSessionConfig::command_timeout, "QUIT reply", &Impl::on_quit},
}};

// --- Input -------------------------------------------------------------------------------

void ClientSession::Impl::receive(std::string_view bytes) {
  parser.feed(bytes);
  // Once STARTTLS is accepted, what follows the 220 was dropped with the parser's buffer.
  while (state != ClientState::closed && state != ClientState::tls_handshake) {
    ReplyParser::Parsed parsed = parser.next();
    switch (parsed.outcome) {
      case ReplyParser::Outcome::need_more:
        return;
      case ReplyParser::Outcome::malformed:
        return close_with(std::move(parsed.reply));
      case ReplyParser::Outcome::reply:
        on_reply(std::move(parsed.reply));
        break;
    }
  }
}

void ClientSession::Impl::on_reply(SmtpReply reply) {
  if (!awaiting()) return on_unsolicited(std::move(reply));
  const Step step = awaited[head++];
  if (head == awaited.size()) {
    awaited.clear();
    head = 0;
  }
  since_ms = now_ms;
  (this->*kSteps[static_cast<std::size_t>(step)].on_reply)(std::move(reply));
}

// Only a server that is going away may speak unasked (RFC 5321 3.8).
void ClientSession::Impl::on_unsolicited(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  close_with({0, "protocol error: unexpected reply \"" + reply.text.substr(0, 40) + "\""});
}

// --- Replies -----------------------------------------------------------------------------

void ClientSession::Impl::on_greeting(SmtpReply reply) {
  if (reply.code != 220) {
    // A server refusing service with 5xx still waits for QUIT (RFC 5321 3.1).
    if (reply.permanent()) write_line("QUIT");
    return close_with(std::move(reply));
  }
  enter_state(ClientState::greeting);
  command(Step::ehlo, "EHLO ", config->helo_name);
}

void ClientSession::Impl::on_ehlo(SmtpReply reply) {
  if (reply.success()) {
    extensions = parse_ehlo_reply(reply.text);
    return greeted();
  }
  // A permanent refusal is how a server without ESMTP answers EHLO (RFC 5321 3.2).
  if (reply.permanent()) return command(Step::helo, "HELO ", config->helo_name);
  refuse_setup(std::move(reply));
}

void ClientSession::Impl::on_helo(SmtpReply reply) {
  if (!reply.success()) return refuse_setup(std::move(reply));
  extensions = ServerExtensions{};
  greeted();
}

void ClientSession::Impl::on_starttls(SmtpReply reply) {
  if (reply.code == 220) return enter_state(ClientState::tls_handshake);
  if (reply.code == 421) return close_with(std::move(reply));
  // Refused (454, 501, or anything but 220): plaintext will do unless TLS is required.
  if (config->tls == TlsPolicy::opportunistic) return enter_state(ClientState::idle);
  refuse_setup({0, "TLS required, but STARTTLS was refused: " + reply.text});
}

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
  if (!reply.success() && !recipient.settled) recipient = {std::move(reply), true};
  if (tx.pipelined) return;
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
  awaited.push_back(Step::data_end);
}

void ClientSession::Impl::on_data_end(SmtpReply reply) {
  if (reply.code == 421) return close_with(std::move(reply));
  // After the empty content that closed a DATA no recipient needed, start afresh too.
  const bool delivered = any_unsettled();
  settle(reply);
  end_transaction(!delivered);
}

void ClientSession::Impl::on_quit(SmtpReply) {
  enter_state(ClientState::closed);
}

// --- Between the greeting and idle --------------------------------------------------------

// EHLO or HELO answered: STARTTLS first when the policy asks for it and the server offers it
// (once: not again over TLS), else ready. TLS required but not offered is code 0, temporary:
// a hop without STARTTLS must never bounce mail, the next hop or a later try may have it.
void ClientSession::Impl::greeted() {
  if (config->tls == TlsPolicy::off || tls_active) return enter_state(ClientState::idle);
  // Alone, with nothing else awaited: no command may follow STARTTLS in one write.
  if (extensions.starttls) return command(Step::starttls, "STARTTLS");
  if (config->tls == TlsPolicy::opportunistic) return enter_state(ClientState::idle);
  refuse_setup({0, "TLS required, but the server does not offer STARTTLS"});
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
  command(Step::data, "DATA");
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

void ClientSession::Impl::end_transaction(bool was_cut_short) {
  TransactionResult done;
  done.recipients.reserve(tx.recipients.size());
  for (Recipient& recipient : tx.recipients) done.recipients.push_back(std::move(recipient.reply));
  result = std::move(done);
  cut_short = was_cut_short;
  enter_state(ClientState::idle);
}

// --- Output, deadlines and state ---------------------------------------------------------

void ClientSession::Impl::command(Step step, std::string_view verb, std::string_view argument) {
  if (!awaiting()) since_ms = now_ms;
  write_line(verb, argument);
  awaited.push_back(step);
}

void ClientSession::Impl::write_line(std::string_view verb, std::string_view argument) {
  output.append(verb).append(argument).append("\r\n");
}

// EHLO or HELO refused, or TLS required and not to be had: a server that is still there gets
// its QUIT.
void ClientSession::Impl::refuse_setup(SmtpReply reply) {
  if (reply.code != 421) write_line("QUIT");
  close_with(std::move(reply));
}

// The session ends: `reason` becomes the setup failure or the fate of the recipients still
// open, and nothing more is read.
void ClientSession::Impl::close_with(SmtpReply reason) {
  switch (state) {
    case ClientState::connecting:
    case ClientState::greeting:
    case ClientState::tls_handshake:
      setup_failure = std::move(reason);
      break;
    case ClientState::busy:
      settle(reason);
      end_transaction(true);
      break;
    case ClientState::idle:
    case ClientState::quitting:
    case ClientState::closed:
      break;
  }
  enter_state(ClientState::closed);
}

// Every change of state happens here, with what entering each state implies.
void ClientSession::Impl::enter_state(ClientState next) {
  switch (next) {
    case ClientState::idle:
    case ClientState::closed:
      tx = Transaction{};
      break;
    case ClientState::tls_handshake:
      // Anything the server sent after its 220 is dropped unread (CVE-2011-0411's kind of
      // injection): replies are read again only over TLS. The handshake is timed from now.
      parser = ReplyParser{};
      starttls_accepted = true;
      since_ms = now_ms;
      break;
    case ClientState::connecting:
    case ClientState::greeting:
    case ClientState::busy:
    case ClientState::quitting:
      break;
  }
  if (next == ClientState::closed) {
    awaited.clear();
    head = 0;
    starttls_accepted = false;
  }
  const ClientState previous = std::exchange(state, next);
  if (trace && previous != next) trace(previous, next);
}

std::int64_t ClientSession::Impl::deadline() const {
  if (state == ClientState::tls_handshake) return since_ms + config->command_timeout.count();
  if (!awaiting()) return kNever;
  if (tx.writing_content) return since_ms + config->data_block_timeout.count();
  return since_ms + (config.get()->*current_rule().timeout).count();
}

std::string_view ClientSession::Impl::awaited_name() const {
  if (state == ClientState::tls_handshake) return "the TLS handshake";
  if (tx.writing_content) return "message content to be written";
  return awaiting() ? current_rule().name : std::string_view();
}

// --- ClientSession -----------------------------------------------------------------------

ClientSession::ClientSession(std::shared_ptr<const ClientSessionConfig> config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

ClientSession::~ClientSession() = default;

void ClientSession::connected(std::int64_t now_ms) {
  Impl& session = *impl_;
  if (session.state != ClientState::connecting || session.awaiting()) return;
  session.now_ms = now_ms;
  session.since_ms = now_ms;
  session.awaited.push_back(Step::greeting);
}

void ClientSession::receive(std::string_view bytes, std::int64_t now_ms) {
  // During the handshake the stream should pass nothing on; whatever it does is not a reply.
  if (impl_->state == ClientState::closed || impl_->state == ClientState::tls_handshake) return;
  impl_->now_ms = now_ms;
  impl_->receive(bytes);
}

void ClientSession::send(OutboundMessage message, std::int64_t now_ms) {
  Impl& session = *impl_;
  session.now_ms = now_ms;
  if (session.state != ClientState::idle)
    return session.refuse_all(message, {0, "session not ready for a message"});
  session.start(std::move(message));
}

void ClientSession::quit(std::int64_t now_ms) {
  Impl& session = *impl_;
  session.now_ms = now_ms;
  switch (session.state) {
    case ClientState::idle:
      session.command(Step::quit, "QUIT");
      return session.enter_state(ClientState::quitting);
    case ClientState::closed:
      return;
    case ClientState::connecting:
    case ClientState::greeting:
    case ClientState::tls_handshake:
    case ClientState::busy:
    case ClientState::quitting:
      return session.close_with({0, "session closed before the server answered"});
  }
}

void ClientSession::connection_lost(std::string_view reason) {
  Impl& session = *impl_;
  if (session.state == ClientState::closed) return;
  std::string text = "connection lost";
  if (const std::string_view awaited = session.awaited_name(); !awaited.empty())
    text.append(" while waiting for ").append(awaited);
  if (!reason.empty()) text.append(": ").append(reason);
  session.close_with({0, std::move(text)});
}

void ClientSession::timed_out(std::int64_t now_ms) {
  Impl& session = *impl_;
  if (session.state == ClientState::closed || now_ms < session.deadline()) return;
  session.now_ms = now_ms;
  if (session.state == ClientState::tls_handshake)
    return session.close_with({0, "TLS handshake timed out"});
  session.close_with({0, "timeout waiting for " + std::string(session.awaited_name())});
}

void ClientSession::output_written(std::int64_t now_ms) {
  Impl& session = *impl_;
  if (session.unwritten_outputs > 0) --session.unwritten_outputs;
  if (!session.tx.writing_content) return;
  session.now_ms = now_ms;
  session.since_ms = now_ms;
  if (session.unwritten_outputs == 0 && session.output.empty()) session.tx.writing_content = false;
}

bool ClientSession::take_starttls() {
  return std::exchange(impl_->starttls_accepted, false);
}

void ClientSession::tls_established(std::int64_t now_ms) {
  Impl& session = *impl_;
  if (session.state != ClientState::tls_handshake) return;
  session.now_ms = now_ms;
  session.tls_active = true;
  session.starttls_accepted = false;
  // RFC 3207 4.2: what the server said before TLS is forgotten, and it is asked again.
  session.extensions = ServerExtensions{};
  session.enter_state(ClientState::greeting);
  session.command(Step::ehlo, "EHLO ", session.config->helo_name);
}

// A failure at any other time (a host out of step) closes the session all the same.
void ClientSession::tls_failed(std::string_view reason) {
  Impl& session = *impl_;
  if (session.state == ClientState::closed) return;
  session.close_with({0, "TLS handshake failed: " + std::string(reason)});
}

bool ClientSession::tls_active() const {
  return impl_->tls_active;
}

std::string ClientSession::take_output() {
  if (!impl_->output.empty()) ++impl_->unwritten_outputs;
  return std::exchange(impl_->output, std::string());
}

std::optional<TransactionResult> ClientSession::take_result() {
  return std::exchange(impl_->result, std::nullopt);
}

void ClientSession::set_trace(StateTrace trace) {
  impl_->trace = std::move(trace);
}

std::string_view to_string(ClientState state) {
  switch (state) {
    case ClientState::connecting:
      return "connecting";
    case ClientState::greeting:
      return "greeting";
    case ClientState::tls_handshake:
      return "tls_handshake";
    case ClientState::idle:
      return "idle";
    case ClientState::busy:
      return "busy";
    case ClientState::quitting:
      return "quitting";
    case ClientState::closed:
      return "closed";
  }
  return "unknown";
}

std::string_view to_string(TlsPolicy policy) {
  switch (policy) {
    case TlsPolicy::off:
      return "off";
    case TlsPolicy::opportunistic:
      return "opportunistic";
    case TlsPolicy::required:
      return "required";
  }
  return "unknown";
}

ClientState ClientSession::state() const {
  return impl_->state;
}

std::int64_t ClientSession::deadline_ms() const {
  return impl_->deadline();
}

const std::optional<SmtpReply>& ClientSession::setup_failure() const {
  return impl_->setup_failure;
}

const ServerExtensions& ClientSession::extensions() const {
  return impl_->extensions;
}

bool ClientSession::pipelining() const {
  return impl_->extensions.pipelining;
}

std::optional<std::uint64_t> ClientSession::size_limit() const {
  return impl_->extensions.size_limit;
}

}  // namespace relayq::mta
