// The outbound SMTP client session: the awaited replies as a table of steps, one handler per
// step, and one enter_state() through which every change of state goes. STARTTLS (RFC 3207)
// is a step of the greeting; the handshake itself is the host's. A session is used only on
// the loop thread of the connection that owns it.
// The transactions are in client_session_transaction.cpp, the shared state in
// client_session_impl.hpp.
#include "mta/smtp/client_session.hpp"

#include "smtp/client_session_impl.hpp"

namespace relayq::mta {

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
  command(Step::ehlo, config->lmtp ? "LHLO " : "EHLO ", config->helo_name);
}

void ClientSession::Impl::on_ehlo(SmtpReply reply) {
  if (reply.success()) {
    extensions = parse_ehlo_reply(reply.text);
    return greeted();
  }
  // A permanent refusal is how a server without ESMTP answers EHLO (RFC 5321 3.2); LMTP has
  // no older greeting to fall back to.
  if (reply.permanent() && !config->lmtp) return command(Step::helo, "HELO ", config->helo_name);
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
