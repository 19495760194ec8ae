// The inbound SMTP server session: the commands as a table, one handler per command, and one
// enter_state() through which every change of state goes.
#include "mta/smtp/server_session.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "mta/common/ascii.hpp"
#include "mta/smtp/content_reader.hpp"
#include "mta/smtp/path_argument.hpp"
#include "mta/smtp/received_header.hpp"
#include "mta/smtp/replies.hpp"
#include "smtp/commands.hpp"

namespace relayq::mta {

namespace {

using Fault = ContentReader::Fault;
using Framing = ContentReader::Framing;

Reply refusal_for(Fault fault) {
  switch (fault) {
    case Fault::too_big:
      return Reply::message_too_big;
    case Fault::line_too_long:
      return Reply::text_line_too_long;
    case Fault::none:
    case Fault::bad_bytes:
      break;
  }
  return Reply::bad_data;
}

// SIZE=n (RFC 1870): digits; a number too large for 64 bits is simply too large.
std::optional<std::uint64_t> parse_size_param(std::string_view value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), is_digit)) return std::nullopt;
  std::uint64_t size = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), size);
  return error == std::errc() ? size : std::numeric_limits<std::uint64_t>::max();
}

}  // namespace

struct ServerSession::Impl {
  // A MAIL transaction, from MAIL to the hand-off of its message or its refusal.
  struct Transaction {
    std::string sender;
    std::vector<std::string> recipients;
    std::uint64_t declared_size = 0;  // SIZE=, to size the body buffer
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool chunked = false;  // the content comes by BDAT
    queue::MessageId id = 0;
    std::int64_t received_ms = 0;
    std::optional<ContentReader> content;  // from DATA or the first BDAT on
  };

  // The BDAT chunk being read.
  struct Chunk {
    std::uint64_t size = 0;
    std::uint64_t remaining = 0;
    bool last = false;
    std::optional<Reply> refusal;  // replied once the octets are read, when they are not taken
  };

  Impl(std::shared_ptr<const ServerSessionConfig> config, PeerInfo peer, SessionObserver* observer)
      : config(std::move(config)), peer(peer), observer(observer) {}

  // Input.
  void receive(std::string_view bytes);
  void drain_buffer();
  std::size_t run(std::string_view input);
  void on_frame(const CommandFramer::Frame& frame);
  void dispatch(std::string_view line);
  std::optional<Reply> sequence_error(std::uint8_t flags) const;

  // Command handlers, one per row of kCommands.
  void on_ehlo(std::string_view argument);
  void on_helo(std::string_view argument);
  void on_mail(std::string_view argument);
  void on_rcpt(std::string_view argument);
  void on_data(std::string_view argument);
  void on_bdat(std::string_view argument);
  void on_rset(std::string_view argument);
  void on_noop(std::string_view argument);
  void on_quit(std::string_view argument);
  void on_vrfy(std::string_view argument);
  void on_help(std::string_view argument);
  void on_not_implemented(std::string_view argument);

  // Content.
  void start_content(Framing framing);
  std::size_t read_data(std::string_view input);
  std::size_t read_chunk(std::string_view input);
  void end_data();
  void end_chunk();
  void refuse_content(Fault fault);
  void hand_off_message();

  // Results and state.
  void stored(const queue::StoreResult& result);
  void reset_transaction();
  void enter_state(SessionState next);
  void close_with(Reply reply, std::string_view argument = {});
  void reply(Reply reply, std::string_view argument = {});
  void refuse(Reply reply);
  void line(std::string_view text);
  bool greeted() const { return !helo.empty(); }
  std::string_view protocol() const;

  static const std::array<CommandSpec<Impl>, 14> kCommands;

  std::shared_ptr<const ServerSessionConfig> config;
  PeerInfo peer;
  SessionObserver* observer;

  SessionState state = SessionState::greeting;
  std::string helo;  // empty until HELO/EHLO
  bool esmtp = false;
  Transaction tx;
  Chunk chunk;
  CommandFramer framer;
  std::string input;  // received, not yet processed
  std::string output;
  std::optional<queue::Message> message;           // until take_message()
  std::optional<queue::Envelope> stored_envelope;  // until message_stored(), for the observer
  bool shutdown_requested = false;                 // shut_down() while storing

  std::int64_t now_ms = 0;
  std::int64_t last_command_ms = 0;
  std::int64_t data_start_ms = 0;
  std::int64_t last_input_ms = 0;
  std::uint64_t data_bytes = 0;  // read since data_start_ms
};

// Sequencing (RFC 5321 4.1.4) as data. BDAT's octets must be read whatever the verdict, so
// on_bdat checks its sequencing itself once it knows how many there are.
const std::array<CommandSpec<ServerSession::Impl>, 14> ServerSession::Impl::kCommands = {{
    {"EHLO", &Impl::on_ehlo, kNeedsArgument, "EHLO hostname"},
    {"HELO", &Impl::on_helo, kNeedsArgument, "HELO hostname"},
    {"MAIL", &Impl::on_mail, kNeedsGreeting | kNotInMail | kNeedsArgument, "MAIL FROM:<address>"},
    {"RCPT", &Impl::on_rcpt, kNeedsGreeting | kNeedsMail | kNeedsArgument, "RCPT TO:<address>"},
    {"DATA", &Impl::on_data, kNeedsGreeting | kNeedsMail | kNoArgument, "DATA"},
    {"BDAT", &Impl::on_bdat, 0, "BDAT size [LAST]"},
    {"RSET", &Impl::on_rset, kNoArgument, "RSET"},
    {"NOOP", &Impl::on_noop, 0, ""},
    {"QUIT", &Impl::on_quit, 0, ""},
    {"VRFY", &Impl::on_vrfy, kNeedsArgument, "VRFY address"},
    {"HELP", &Impl::on_help, 0, ""},
    {"EXPN", &Impl::on_not_implemented, 0, ""},
    {"STARTTLS", &Impl::on_not_implemented, 0, ""},
    {"AUTH", &Impl::on_not_implemented, 0, ""},
}};

// --- Input -------------------------------------------------------------------------------

void ServerSession::Impl::receive(std::string_view bytes) {
  if (state == SessionState::data || state == SessionState::bdat) last_input_ms = now_ms;
  if (state != SessionState::storing && !input.empty()) {
    // An unfinished command line is waiting: complete it first.
    const std::size_t lf = bytes.find('\n');
    const std::size_t head = lf == std::string_view::npos ? bytes.size() : lf + 1;
    input.append(bytes.substr(0, head));
    bytes.remove_prefix(head);
    drain_buffer();
  }
  if (state == SessionState::closed) return;
  if (state == SessionState::storing || !input.empty()) {
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
      case SessionState::closed:
        return pos;
      case SessionState::greeting:
      case SessionState::ready:
      case SessionState::mail: {
        const CommandFramer::Frame frame = framer.next(rest);
        pos += frame.consumed;
        if (frame.outcome == CommandFramer::Outcome::need_more) return pos;
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
}

void ServerSession::Impl::dispatch(std::string_view line) {
  const auto [verb, argument] = split_command_line(line);
  const auto* spec = find_command<Impl>(kCommands, verb);
  if (spec == nullptr) return reply(Reply::unrecognized);
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

// --- Commands ----------------------------------------------------------------------------

void ServerSession::Impl::on_ehlo(std::string_view argument) {
  helo = argument.substr(0, argument.find(' '));
  esmtp = true;
  reset_transaction();
  const std::string& host = config->hostname;
  line("250-" + host);
  line("250-PIPELINING");
  line("250-SIZE " + std::to_string(config->max_message_size));
  line("250-8BITMIME");
  line("250-SMTPUTF8");
  line("250-ENHANCEDSTATUSCODES");
  line("250-CHUNKING");
  line("250 HELP");
}

void ServerSession::Impl::on_helo(std::string_view argument) {
  helo = argument.substr(0, argument.find(' '));
  esmtp = false;
  reset_transaction();
  reply(Reply::helo, config->hostname);
}

void ServerSession::Impl::on_mail(std::string_view argument) {
  const PathArgument path = parse_path_argument(argument, "FROM", true);
  if (path.status == PathStatus::bad_syntax) return reply(Reply::syntax, "MAIL FROM:<address>");
  if (path.status != PathStatus::ok) return reply(Reply::bad_sender);
  Transaction next;
  for (const EsmtpParam& param : path.params) {
    // Parameters belong to the extensions announced by EHLO (RFC 5321 4.1.4).
    const std::string_view keyword = esmtp ? param.keyword : std::string_view();
    if (equals_ignore_case(keyword, "SIZE")) {
      const auto size = parse_size_param(param.value);
      if (!size) return reply(Reply::bad_size_parameter);
      next.declared_size = *size;
    } else if (equals_ignore_case(keyword, "BODY")) {
      if (equals_ignore_case(param.value, "8BITMIME")) {
        next.eight_bit_mime = true;
      } else if (!equals_ignore_case(param.value, "7BIT")) {
        return reply(Reply::bad_body_parameter);
      }
    } else if (equals_ignore_case(keyword, "SMTPUTF8")) {
      if (param.has_value) return reply(Reply::bad_smtputf8_parameter);
      next.smtputf8 = true;
    } else {
      return reply(Reply::unsupported_option, param.keyword);
    }
  }
  if (next.declared_size > config->max_message_size) return refuse(Reply::message_too_big);
  if (path.non_ascii && !next.smtputf8) return reply(Reply::needs_smtputf8);
  next.sender = path.mailbox;
  tx = std::move(next);
  enter_state(SessionState::mail);
  reply(Reply::sender_ok);
}

void ServerSession::Impl::on_rcpt(std::string_view argument) {
  if (tx.chunked) return reply(Reply::rcpt_after_bdat);
  const PathArgument path = parse_path_argument(argument, "TO", false);
  switch (path.status) {
    case PathStatus::ok:
      break;
    case PathStatus::bad_syntax:
      return reply(Reply::syntax, "RCPT TO:<address>");
    case PathStatus::bad_path:
      return reply(Reply::bad_recipient);
    case PathStatus::no_domain:
      return reply(Reply::recipient_needs_domain);
  }
  if (!path.params.empty()) return reply(Reply::unsupported_option, path.params.front().keyword);
  if (path.non_ascii && !tx.smtputf8) return reply(Reply::needs_smtputf8);
  if (std::find(tx.recipients.begin(), tx.recipients.end(), path.mailbox) != tx.recipients.end())
    return reply(Reply::recipient_ok);  // a duplicate: delivered once
  if (tx.recipients.size() >= config->max_recipients) return refuse(Reply::too_many_recipients);
  // No relay rules at all means nobody may relay: fail closed.
  if (!config->relay || !config->relay->may_send(peer.address, false, path.domain))
    return refuse(Reply::relay_denied);
  tx.recipients.push_back(path.mailbox);
  reply(Reply::recipient_ok);
}

void ServerSession::Impl::on_data(std::string_view) {
  if (tx.chunked) return reply(Reply::data_after_bdat);
  if (tx.recipients.empty()) return reply(Reply::no_recipients);
  start_content(Framing::dot_terminated);
  enter_state(SessionState::data);
  reply(Reply::start_data);
}

void ServerSession::Impl::on_bdat(std::string_view argument) {
  const auto bdat = parse_bdat_argument(argument);
  // Without a valid count the octets that follow cannot be told from commands.
  if (!bdat) return close_with(Reply::syntax, "BDAT size [LAST]");
  chunk = Chunk{bdat->size, bdat->size, bdat->last, sequence_error(kNeedsGreeting | kNeedsMail)};
  if (!chunk.refusal && tx.recipients.empty()) chunk.refusal = Reply::no_recipients;
  if (!chunk.refusal && !tx.content) start_content(Framing::counted);
  enter_state(SessionState::bdat);
  if (chunk.remaining == 0) end_chunk();
}

void ServerSession::Impl::on_rset(std::string_view) {
  reset_transaction();
  reply(Reply::ok);
}

void ServerSession::Impl::on_noop(std::string_view) {
  reply(Reply::ok);
}

void ServerSession::Impl::on_quit(std::string_view) {
  close_with(Reply::bye);
}

void ServerSession::Impl::on_vrfy(std::string_view) {
  reply(Reply::cannot_vrfy);
}

void ServerSession::Impl::on_help(std::string_view) {
  std::string verbs;
  for (const auto& spec : kCommands) {
    if (spec.handle == &Impl::on_not_implemented) continue;
    verbs += ' ';
    verbs += spec.verb;
  }
  reply(Reply::help, verbs);
}

void ServerSession::Impl::on_not_implemented(std::string_view) {
  reply(Reply::not_implemented);
}

// --- Content -----------------------------------------------------------------------------

// The message id and the trace header are fixed when content starts, so that the body is
// built in place, header first, without being copied afterwards.
void ServerSession::Impl::start_content(Framing framing) {
  tx.id = config->next_id();
  tx.received_ms = config->wall_clock_ms();
  tx.chunked = framing == Framing::counted;
  const ReceivedTrace trace{
      .helo = helo,
      .client = peer.address,
      .hostname = config->hostname,
      .protocol = protocol(),
      .id = tx.id,
      .recipient = tx.recipients.size() == 1 ? std::string_view(tx.recipients.front()) : "",
      .time_ms = tx.received_ms,
  };
  tx.content.emplace(framing, format_received(trace), config->max_message_size, tx.declared_size);
}

std::size_t ServerSession::Impl::read_data(std::string_view bytes) {
  const std::size_t used = tx.content->feed(bytes);
  data_bytes += used;
  if (tx.content->ended()) end_data();
  return used;
}

std::size_t ServerSession::Impl::read_chunk(std::string_view bytes) {
  const std::size_t used =
      static_cast<std::size_t>(std::min<std::uint64_t>(chunk.remaining, bytes.size()));
  if (!chunk.refusal) tx.content->feed(bytes.substr(0, used));
  chunk.remaining -= used;
  data_bytes += used;
  if (chunk.remaining == 0) end_chunk();
  return used;
}

void ServerSession::Impl::end_data() {
  last_command_ms = now_ms;
  if (tx.content->fault() != Fault::none) return refuse_content(tx.content->fault());
  hand_off_message();
}

void ServerSession::Impl::end_chunk() {
  last_command_ms = now_ms;
  if (chunk.refusal) {
    reply(*chunk.refusal);
    return reset_transaction();
  }
  if (chunk.last) tx.content->finish();
  if (tx.content->fault() != Fault::none) return refuse_content(tx.content->fault());
  if (chunk.last) return hand_off_message();
  enter_state(SessionState::mail);
  reply(Reply::chunk_received, std::to_string(chunk.size));
}

void ServerSession::Impl::refuse_content(Fault fault) {
  reset_transaction();
  refuse(refusal_for(fault));
}

void ServerSession::Impl::hand_off_message() {
  queue::Message ready;
  queue::Envelope& envelope = ready.envelope;
  envelope.id = tx.id;
  envelope.sender = tx.sender;
  envelope.recipients.resize(tx.recipients.size());
  for (std::size_t i = 0; i < tx.recipients.size(); ++i)
    envelope.recipients[i].address = std::move(tx.recipients[i]);
  envelope.received_ms = tx.received_ms;
  envelope.listener = config->listener_name;
  envelope.client_address = peer.address.to_string();
  envelope.helo = helo;
  envelope.eight_bit_mime = tx.eight_bit_mime;
  envelope.smtputf8 = tx.smtputf8;
  ready.body = tx.content->take_body();
  envelope.size = ready.body.size();
  stored_envelope = envelope;
  message = std::move(ready);
  enter_state(SessionState::storing);
}

// --- Results and state -------------------------------------------------------------------

void ServerSession::Impl::stored(const queue::StoreResult& result) {
  last_command_ms = now_ms;
  message.reset();  // in case the host never took it
  const queue::Envelope envelope = std::move(*stored_envelope);
  stored_envelope.reset();
  if (result.ok()) {
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
    case SessionState::mail:
    case SessionState::storing:
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
  line(format_reply(text, argument));
}

// A refusal that dashboards count: the reason comes from the reply's row.
void ServerSession::Impl::refuse(Reply text) {
  if (const auto reason = reply_row(text).reason; reason && observer != nullptr)
    observer->message_rejected(*reason);
  reply(text);
}

void ServerSession::Impl::line(std::string_view text) {
  output.append(text);
  output.append("\r\n");
}

std::string_view ServerSession::Impl::protocol() const {
  if (tx.smtputf8) return "UTF8SMTP";  // RFC 6531 3.7.3
  return esmtp ? "ESMTP" : "SMTP";
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
    case SessionState::closed:
      return "closed";
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

void ServerSession::timed_out(std::int64_t now_ms) {
  const SessionState state = impl_->state;
  if (state == SessionState::closed || state == SessionState::storing) return;
  impl_->now_ms = now_ms;
  // Counted as a refused message only when it cuts a transaction short.
  const bool in_transaction =
      state == SessionState::mail || state == SessionState::data || state == SessionState::bdat;
  if (in_transaction && impl_->observer != nullptr)
    impl_->observer->message_rejected(*reply_row(Reply::timeout).reason);
  impl_->close_with(Reply::timeout, impl_->config->hostname);
}

void ServerSession::shut_down() {
  if (impl_->state == SessionState::closed) return;
  if (impl_->state == SessionState::storing) {
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
    case SessionState::closed:
      return std::numeric_limits<std::int64_t>::max();
    case SessionState::greeting:
    case SessionState::ready:
    case SessionState::mail:
      break;
  }
  return session.last_command_ms + config.command_timeout.count();
}

}  // namespace relayq::mta
