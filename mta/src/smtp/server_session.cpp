// The inbound SMTP server session: input cut into commands and content, one enter_state()
// through which every change of state goes, the store's verdict, and the public API. The
// session's thread only, no I/O: bytes in, replies and messages out. The commands are in
// server_session_commands.cpp, the content in server_session_content.cpp.
#include "mta/smtp/server_session.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "smtp/server_session_impl.hpp"

namespace relayq::mta {

// --- Input -------------------------------------------------------------------------------

void ServerSession::Impl::receive(std::string_view bytes) {
  // Plaintext after an accepted STARTTLS is never read as commands (CVE-2011-0411); the host
  // sends nothing more before the handshake anyway.
  if (state == SessionState::handshake) return;
  if (state == SessionState::data || state == SessionState::bdat) last_input_ms = now_ms;
  if (!waiting_for_host() && !input.empty()) {
    // An unfinished command line is waiting: complete it first.
    const std::size_t lf = bytes.find('\n');
    const std::size_t head = lf == std::string_view::npos ? bytes.size() : lf + 1;
    input.append(bytes.substr(0, head));
    bytes.remove_prefix(head);
    bytes_after_buffer = bytes.size();
    drain_buffer();
    bytes_after_buffer = 0;
  }
  if (state == SessionState::closed || state == SessionState::handshake) return;
  if (waiting_for_host() || !input.empty()) {
    input.append(bytes);
    return;
  }
  // Nothing is waiting: read straight from the caller's bytes, so that message content is
  // copied once, into the body, and only an unfinished line is kept.
  const std::size_t used = run(bytes);
  if (state != SessionState::closed) input.assign(bytes.substr(used));
}

void ServerSession::Impl::drain_buffer() {
  const std::size_t used = run(input);
  if (state == SessionState::closed) {
    input = std::string();
  } else {
    input.erase(0, used);
  }
}

// Processes input until it runs out, a message is handed off, or the session closes; returns
// how many bytes were used.
std::size_t ServerSession::Impl::run(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::string_view rest = bytes.substr(pos);
    switch (state) {
      case SessionState::data:
        pos += read_data(rest);
        break;
      case SessionState::bdat:
        pos += read_chunk(rest);
        break;
      case SessionState::storing:
      case SessionState::checking:
      case SessionState::verifying:
      case SessionState::authenticating:
      case SessionState::closed:
        return pos;
      case SessionState::handshake:
        return bytes.size();  // see receive(): dropped
      case SessionState::auth: {
        const CommandFramer::Frame frame = framer.next(rest);
        pos += frame.consumed;
        if (frame.outcome == CommandFramer::Outcome::need_more) return pos;
        auth_response(frame);
        break;
      }
      case SessionState::greeting:
      case SessionState::ready:
      case SessionState::mail: {
        const CommandFramer::Frame frame = framer.next(rest);
        pos += frame.consumed;
        if (frame.outcome == CommandFramer::Outcome::need_more) return pos;
        input_follows = pos < bytes.size() || bytes_after_buffer > 0;
        on_frame(frame);
        break;
      }
    }
  }
  return pos;
}

void ServerSession::Impl::on_frame(const CommandFramer::Frame& frame) {
  last_command_ms = now_ms;
  switch (frame.outcome) {
    case CommandFramer::Outcome::line:
      dispatch(frame.line);
      break;
    case CommandFramer::Outcome::too_long:
      reply(Reply::line_too_long);
      break;
    case CommandFramer::Outcome::malformed:
      reply(Reply::malformed_line);
      break;
    case CommandFramer::Outcome::need_more:
      break;
  }
  // A client that keeps failing, or keeps talking without sending mail, holds a connection
  // that others could use; every command resets the timeout, so only a count ends it.
  if (state == SessionState::closed) return;
  if (errors > config->max_errors) return close_with(Reply::too_many_errors, config->hostname);
  if (junk_commands > config->max_junk_commands)
    close_with(Reply::too_many_junk_commands, config->hostname);
}

void ServerSession::Impl::dispatch(std::string_view line) {
  const auto [verb, argument] = split_command_line(line);
  const auto* spec = find_command<Impl>(kCommands, verb);
  if (spec == nullptr) return reply(Reply::unrecognized);
  if (spec->flags & kJunk) ++junk_commands;
  if (const auto refusal = sequence_error(spec->flags)) return reply(*refusal);
  if (((spec->flags & kNeedsArgument) && argument.empty()) ||
      ((spec->flags & kNoArgument) && !argument.empty()))
    return reply(Reply::syntax, spec->syntax);
  (this->*spec->handle)(argument);
}

std::optional<Reply> ServerSession::Impl::sequence_error(std::uint8_t flags) const {
  if ((flags & kNeedsGreeting) && !greeted()) return Reply::need_helo;
  if ((flags & kNeedsMail) && state != SessionState::mail) return Reply::need_mail;
  if ((flags & kNotInMail) && state == SessionState::mail) return Reply::nested_mail;
  return std::nullopt;
}

// --- Results and state -------------------------------------------------------------------

void ServerSession::Impl::stored(const queue::StoreResult& result) {
  last_command_ms = now_ms;
  message.reset();  // in case the host never took it
  const queue::Envelope envelope = std::move(*stored_envelope);
  stored_envelope.reset();
  if (result.ok()) {
    // Mail moved: the counts of errors and junk start over (Postfix's "without delivering mail").
    errors = 0;
    junk_commands = 0;
    reply(Reply::queued, queue::format_id(envelope.id));
    if (observer != nullptr) observer->message_accepted(envelope);
  } else {
    refuse(reply_for(result.error));
  }
  if (result.error == queue::StoreErrorKind::shutting_down)
    return enter_state(SessionState::closed);
  if (shutdown_requested) return close_with(Reply::shutting_down, config->hostname);
  enter_state(SessionState::ready);
  drain_buffer();
}

// The host's verdict on the credentials of an AUTH exchange.
void ServerSession::Impl::checked(AuthVerdict verdict) {
  last_command_ms = now_ms;
  std::string user = std::exchange(auth_user, std::string());
  switch (verdict) {
    case AuthVerdict::accepted:
      authenticated = true;
      auth_user = std::move(user);
      reply(Reply::auth_ok);
      break;
    case AuthVerdict::rejected:
      if (++auth_failures >= config->max_auth_failures)
        return close_with(Reply::auth_too_many_failures, config->hostname);
      reply(Reply::auth_failed);
      break;
    case AuthVerdict::throttled:
      reply(Reply::auth_throttled);
      break;
    case AuthVerdict::unavailable:
      reply(Reply::auth_unavailable);
      break;
  }
  if (shutdown_requested) return close_with(Reply::shutting_down, config->hostname);
  enter_state(SessionState::ready);
  drain_buffer();
}

bool ServerSession::Impl::has_relay_rights() const {
  return authenticated || (config->relay && config->relay->is_trusted_network(peer.address));
}

// The host's verdict on the sender of the MAIL held in state checking.
void ServerSession::Impl::sender_verdict(SenderVerdict verdict, std::string_view detail) {
  last_command_ms = now_ms;
  switch (verdict) {
    case SenderVerdict::accepted:
      enter_state(SessionState::mail);
      reply(Reply::sender_ok);
      break;
    case SenderVerdict::spf_failed:
    case SenderVerdict::spf_temporary:
    case SenderVerdict::rdns_failed:
    case SenderVerdict::rdns_temporary: {
      const Reply refusal = verdict == SenderVerdict::spf_failed      ? Reply::spf_failed
                            : verdict == SenderVerdict::spf_temporary ? Reply::spf_temporary
                            : verdict == SenderVerdict::rdns_failed   ? Reply::rdns_failed
                                                                      : Reply::rdns_temporary;
      count_refusal(refusal);
      reply(refusal, detail);
      reset_transaction();
      break;
    }
  }
  if (shutdown_requested) return close_with(Reply::shutting_down, config->hostname);
  drain_buffer();
}

// The host's verdict on the recipient of the RCPT held in state verifying; the transaction
// goes on either way.
void ServerSession::Impl::recipient_verdict(RecipientVerdict verdict) {
  last_command_ms = now_ms;
  const std::string recipient = std::exchange(tx.verifying, {});
  enter_state(SessionState::mail);
  switch (verdict) {
    case RecipientVerdict::exists:
      tx.recipients.push_back(recipient);
      reply(Reply::recipient_ok);
      break;
    case RecipientVerdict::unknown:
      count_refusal(Reply::unknown_recipient);
      reply(Reply::unknown_recipient, recipient);
      break;
    case RecipientVerdict::temporary:
      count_refusal(Reply::recipient_temporary);
      reply(Reply::recipient_temporary, recipient);
      break;
    case RecipientVerdict::unavailable:
      count_refusal(Reply::recipient_unverifiable);
      reply(Reply::recipient_unverifiable, recipient);
      break;
  }
  if (shutdown_requested) return close_with(Reply::shutting_down, config->hostname);
  drain_buffer();
}

void ServerSession::Impl::reset_transaction() {
  enter_state(greeted() ? SessionState::ready : SessionState::greeting);
}

// Every change of state happens here, with what entering each state implies.
void ServerSession::Impl::enter_state(SessionState next) {
  switch (next) {
    case SessionState::greeting:
    case SessionState::ready:
    case SessionState::closed:
      tx = Transaction{};
      break;
    case SessionState::data:
    case SessionState::bdat:
      data_start_ms = now_ms;
      last_input_ms = now_ms;
      data_bytes = 0;
      break;
    case SessionState::handshake:
      // RFC 3207 4.2: everything learnt before TLS is forgotten, the greeting too.
      tx = Transaction{};
      helo.clear();
      esmtp = false;
      input.clear();
      break;
    case SessionState::mail:
    case SessionState::storing:
    case SessionState::checking:
    case SessionState::verifying:
    case SessionState::auth:
    case SessionState::authenticating:
      break;
  }
  const SessionState previous = std::exchange(state, next);
  if (observer != nullptr && previous != next) observer->state_changed(previous, next);
}

void ServerSession::Impl::close_with(Reply text, std::string_view argument) {
  reply(text, argument);
  enter_state(SessionState::closed);
}

void ServerSession::Impl::reply(Reply text, std::string_view argument) {
  if (reply_row(text).code >= 400) ++errors;
  append_reply(output, text, argument);
  output.append("\r\n");
}

// A refusal that dashboards count: the reason comes from the reply's row.
void ServerSession::Impl::refuse(Reply text) {
  count_refusal(text);
  reply(text);
}

void ServerSession::Impl::count_refusal(Reply text) {
  if (const auto reason = reply_row(text).reason; reason && observer != nullptr)
    observer->message_rejected(*reason);
}

void ServerSession::Impl::line(std::string_view text) {
  output.append(text);
  output.append("\r\n");
}

// RFC 3848 and RFC 6531 3.7.3: ESMTP, then S for TLS and A for AUTH.
std::string ServerSession::Impl::protocol() const {
  if (!esmtp) return "SMTP";
  std::string name = tx.smtputf8 ? "UTF8SMTP" : "ESMTP";
  if (tls) name += 'S';
  if (authenticated) name += 'A';
  return name;
}

// --- ServerSession -----------------------------------------------------------------------

std::string_view to_string(SessionState state) {
  switch (state) {
    case SessionState::greeting:
      return "greeting";
    case SessionState::ready:
      return "ready";
    case SessionState::mail:
      return "mail";
    case SessionState::data:
      return "data";
    case SessionState::bdat:
      return "bdat";
    case SessionState::storing:
      return "storing";
    case SessionState::checking:
      return "checking";
    case SessionState::verifying:
      return "verifying";
    case SessionState::closed:
      return "closed";
    case SessionState::handshake:
      return "handshake";
    case SessionState::auth:
      return "auth";
    case SessionState::authenticating:
      return "authenticating";
  }
  return "unknown";
}

ServerSession::ServerSession(std::shared_ptr<const ServerSessionConfig> config, PeerInfo peer,
                             SessionObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), peer, observer)) {}

ServerSession::~ServerSession() = default;

void ServerSession::start(std::int64_t now_ms) {
  impl_->now_ms = now_ms;
  impl_->last_command_ms = now_ms;
  impl_->reply(Reply::greeting, impl_->config->hostname);
}

void ServerSession::receive(std::string_view bytes, std::int64_t now_ms) {
  if (impl_->state == SessionState::closed) return;
  impl_->now_ms = now_ms;
  impl_->receive(bytes);
}

void ServerSession::message_stored(const queue::StoreResult& result, std::int64_t now_ms) {
  if (impl_->state != SessionState::storing) return;
  impl_->now_ms = now_ms;
  impl_->stored(result);
}

void ServerSession::tls_established(const TlsInfo& info, std::int64_t now_ms) {
  Impl& session = *impl_;
  if (session.state == SessionState::closed) return;
  session.now_ms = now_ms;
  session.last_command_ms = now_ms;
  session.tls = info;
  if (session.state == SessionState::handshake) session.enter_state(SessionState::greeting);
}

void ServerSession::credentials_checked(AuthVerdict verdict, std::int64_t now_ms) {
  if (impl_->state != SessionState::authenticating) return;
  impl_->now_ms = now_ms;
  impl_->checked(verdict);
}

void ServerSession::sender_checked(SenderVerdict verdict, std::string_view detail,
                                   std::int64_t now_ms) {
  if (impl_->state != SessionState::checking) return;
  impl_->now_ms = now_ms;
  impl_->sender_verdict(verdict, detail);
}

void ServerSession::recipient_checked(RecipientVerdict verdict, std::int64_t now_ms) {
  if (impl_->state != SessionState::verifying) return;
  impl_->now_ms = now_ms;
  impl_->recipient_verdict(verdict);
}

void ServerSession::timed_out(std::int64_t now_ms) {
  const SessionState state = impl_->state;
  if (state == SessionState::closed || impl_->waiting_for_host()) return;
  impl_->now_ms = now_ms;
  // Counted as a refused message only when it cuts a transaction short.
  const bool in_transaction =
      state == SessionState::mail || state == SessionState::data || state == SessionState::bdat;
  if (in_transaction) impl_->count_refusal(Reply::timeout);
  impl_->close_with(Reply::timeout, impl_->config->hostname);
}

void ServerSession::shut_down() {
  if (impl_->state == SessionState::closed) return;
  if (impl_->waiting_for_host()) {
    impl_->shutdown_requested = true;
    return;
  }
  impl_->close_with(Reply::shutting_down, impl_->config->hostname);
}

std::string ServerSession::take_output() {
  return std::exchange(impl_->output, std::string());
}

std::optional<queue::Message> ServerSession::take_message() {
  return std::exchange(impl_->message, std::nullopt);
}

bool ServerSession::take_starttls() {
  return std::exchange(impl_->starttls_requested, false);
}

std::optional<Credentials> ServerSession::take_credentials() {
  return std::exchange(impl_->credentials, std::nullopt);
}

std::optional<SenderCheck> ServerSession::take_sender_check() {
  return std::exchange(impl_->sender_check, std::nullopt);
}

std::optional<std::string> ServerSession::take_recipient_check() {
  return std::exchange(impl_->recipient_check, std::nullopt);
}

const std::string& ServerSession::authenticated_user() const {
  static const std::string none;
  return impl_->authenticated ? impl_->auth_user : none;
}

bool ServerSession::has_relay_rights() const {
  return impl_->has_relay_rights();
}

SessionState ServerSession::state() const {
  return impl_->state;
}

std::int64_t ServerSession::deadline_ms() const {
  const Impl& session = *impl_;
  const ServerSessionConfig& config = *session.config;
  switch (session.state) {
    case SessionState::data:
    case SessionState::bdat: {
      const std::int64_t timeout = config.data_timeout.count();
      std::int64_t deadline = session.last_input_ms + timeout;
      // A slow sender gets data_timeout plus the time its bytes deserve at min_data_rate.
      if (config.min_data_rate > 0) {
        const auto earned =
            static_cast<std::int64_t>(session.data_bytes * 1000 / config.min_data_rate);
        deadline = std::min(deadline, session.data_start_ms + timeout + earned);
      }
      return deadline;
    }
    case SessionState::storing:
    case SessionState::checking:
    case SessionState::verifying:
    case SessionState::authenticating:
    case SessionState::closed:
      return std::numeric_limits<std::int64_t>::max();
    case SessionState::greeting:
    case SessionState::ready:
    case SessionState::mail:
    case SessionState::handshake:
    case SessionState::auth:
      break;
  }
  return session.last_command_ms + config.command_timeout.count();
}

}  // namespace relayq::mta
