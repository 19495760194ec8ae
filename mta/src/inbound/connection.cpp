// One accepted SMTP connection: bytes from its stream into the session, replies back out,
// complete messages to the store, and the session's deadline on a timer. Loop thread only.
#include "mta/inbound/connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <openssl/crypto.h>

#include "dns/ip_address.hpp"
#include "inbound/client_checks.hpp"
#include "inbound/message_checks.hpp"
#include "mta/common/log_format.hpp"
#include "mta/inbound/proxy_header.hpp"
#include "mta/net/socket_stream.hpp"
#include "mta/net/tls_stream.hpp"
#include "mta/smtp/replies.hpp"

namespace relayq::mta {

namespace {

bool accepts_shutdown_now(SessionState state) {
  // A session between transactions (or before DATA) can be told 421 at once; one that is
  // sending or storing a message finishes it first.
  return state == SessionState::greeting || state == SessionState::ready ||
         state == SessionState::mail;
}

}  // namespace

InboundConnection::InboundConnection(ListenerShared& listener, InboundContext& context)
    : listener_(listener), context_(context) {}

InboundConnection::~InboundConnection() = default;

void InboundConnection::accept(uv_stream_t* server, ListenerShared& listener,
                               InboundContext& context) {
  auto connection = std::make_shared<InboundConnection>(listener, context);
  InboundConnection& c = *connection;
  c.stream_ = net::SocketStream::accept(server, c);
  if (c.stream_ == nullptr) return;
  uv_timer_init(context.loop->loop(), &c.timer_);
  c.timer_.data = &c;
  c.open_handles_ = 2;
  c.self_ = std::move(connection);
  const std::uint32_t before = listener.connections.fetch_add(1, std::memory_order_relaxed);
  c.counted_ = true;
  c.start(before >= listener.max_connections);
}

void InboundConnection::start(bool over_limit) {
  settings_ = listener_.settings.load();
  const auto& session_config = settings_->session;
  if (over_limit && !settings_->implicit_tls) {
    stream_->write(format_reply(Reply::too_many_connections, session_config->hostname) + "\r\n");
    close();
    return;
  }
  if (over_limit) {  // smtps: a plaintext 421 would be garbage to a TLS client
    close();
    return;
  }
  PeerInfo info;
  if (auto peer = stream_->peer()) {
    if (auto address = dns::IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&*peer)))
      info.address = *address;
    info.port =
        ntohs(peer->ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&*peer)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&*peer)->sin_port);
  }
  if (settings_->proxy_protocol) {
    // The balancer speaks first; the banner waits for the client it names.
    awaiting_proxy_ = true;
    connection_peer_ = info;
    peer_address_ = info.address;
    stream_->start_reading();
    uv_timer_start(&timer_, &InboundConnection::on_timer,
                   static_cast<std::uint64_t>(session_config->command_timeout.count()), 0);
    return;
  }
  begin_session(info);
}

void InboundConnection::begin_session(PeerInfo info) {
  peer_address_ = info.address;
  peer_port_ = info.port;
  if (!admit_client()) return;
  if (settings_->implicit_tls) {
    handshake_started_ns_ = uv_hrtime();
    stream_ = net::TlsStream::server(stream_, settings_->tls, *this);
  }
  session_ = std::make_unique<ServerSession>(settings_->session, info, this);
  if (settings_->policy->checks_senders()) {
    checks_ =
        std::make_shared<ClientChecks>(settings_->policy, context_.resolver, *context_.metrics,
                                       info.address, settings_->session->hostname);
    checks_->start();
  }
  context_.connections.insert(this);
  context_.metrics->inbound_connections().Increment();
  session_->start(static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

// The per-address limits, for clients without relay rights (the address the PROXY header
// named, if any): over them, 421 4.7.0 (nothing, on smtps) and the connection closes.
bool InboundConnection::admit_client() {
  const ServerSessionConfig& config = *settings_->session;
  if (config.relay && config.relay->is_trusted_network(peer_address_)) return true;
  const auto verdict =
      listener_.clients.admit(peer_address_, settings_->client_limits, ClientLimits::Clock::now());
  if (verdict == ClientLimits::Verdict::admitted) {
    client_counted_ = true;
    return true;
  }
  const bool too_many = verdict == ClientLimits::Verdict::too_many_connections;
  spdlog::info("event=client_limited listener={} client={} limit={}", listener_.name,
               peer_address_.to_string(), too_many ? "connections" : "per_minute");
  if (!settings_->implicit_tls) {
    stream_->write(format_reply(too_many ? Reply::client_too_many_connections
                                         : Reply::client_too_many_per_minute,
                                config.hostname) +
                   "\r\n");
  }
  close();
  return false;
}

// Bytes before the session exists: the PROXY header, and whatever the client sent behind it.
void InboundConnection::read_proxy_header(std::string_view bytes) {
  proxy_input_.append(bytes);
  const ProxyParse parse = parse_proxy_header(proxy_input_);
  if (parse.status == ProxyParse::Status::need_more) return;
  if (parse.status == ProxyParse::Status::invalid) {
    spdlog::warn("event=proxy_invalid listener={} peer={} error={}", listener_.name,
                 peer_address_.to_string(), quoted(parse.error));
    close();
    return;
  }
  awaiting_proxy_ = false;
  uv_timer_stop(&timer_);
  PeerInfo info = connection_peer_;
  if (parse.header.source) info = {*parse.header.source, parse.header.source_port};
  const std::string rest = proxy_input_.substr(parse.consumed);
  proxy_input_ = std::string();
  begin_session(info);
  if (rest.empty() || closing_) return;
  if (settings_->implicit_tls) {
    static_cast<net::TlsStream*>(stream_)->feed(rest);  // the start of the ClientHello
    return;
  }
  session_->receive(rest, static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

void InboundConnection::begin_shutdown() {
  pump();
}

void InboundConnection::force_shutdown() {
  if (closing_ || !session_) return;
  session_->shut_down();
  pump();
}

// Moves whatever the session produced to where it goes: replies to the socket, a complete
// message to the store, and a close or a new deadline.
void InboundConnection::pump() {
  if (closing_ || !session_) return;
  if (context_.shutting_down && accepts_shutdown_now(session_->state())) session_->shut_down();
  std::string output = session_->take_output();
  if (!output.empty()) stream_->write(std::move(output));
  if (closing_) return;  // the write failed
  if (session_->take_starttls()) start_tls();
  if (auto credentials = session_->take_credentials()) {
    check_credentials(std::move(*credentials));
    return;
  }
  if (auto check = session_->take_sender_check()) {
    check_sender(*check);
    return;
  }
  if (auto recipient = session_->take_recipient_check()) {
    verify_recipient(*recipient);
    return;
  }
  if (auto message = session_->take_message()) {
    store_started_ns_ = uv_hrtime();
    stream_->stop_reading();
    uv_timer_stop(&timer_);
    check_and_store(std::move(*message));
    return;
  }
  if (session_->closed()) {
    close();
    return;
  }
  if (session_->state() != SessionState::storing &&
      session_->state() != SessionState::authenticating &&
      session_->state() != SessionState::checking && session_->state() != SessionState::verifying) {
    stream_->start_reading();
    arm_timer();
  }
}

// The 220 to STARTTLS is on its way in plaintext; everything after it is TLS.
void InboundConnection::start_tls() {
  handshake_started_ns_ = uv_hrtime();
  stream_ = net::TlsStream::server(stream_, settings_->tls, *this);
}

void InboundConnection::stream_secured(const TlsInfo& info) {
  context_.metrics->tls_handshakes(metrics::Direction::inbound, metrics::TlsResult::ok).Increment();
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("event=tls listener={} client={} version={} cipher={} resumed={} ms={:.2f}",
                  listener_.name, peer_address_.to_string(), info.version, info.cipher,
                  info.resumed, static_cast<double>(uv_hrtime() - handshake_started_ns_) / 1e6);
  }
  handshake_started_ns_ = 0;
  if (closing_) return;
  session_->tls_established(info, static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

// Password checks block (hashes are slow on purpose; Dovecot is a round trip away): they run on
// libuv's thread pool, never on the loop. Reading stops meanwhile, so that a client cannot pile
// up input behind its AUTH.
void InboundConnection::check_credentials(Credentials credentials) {
  stream_->stop_reading();
  uv_timer_stop(&timer_);
  if (context_.auth_throttle->blocked(peer_address_, AuthThrottle::Clock::now())) {
    spdlog::warn("event=auth_throttled listener={} client={} user={}", listener_.name,
                 peer_address_.to_string(), quoted(credentials.user));
    context_.loop->post([self = shared_from_this()] {
      if (self->closing_) return;
      self->session_->credentials_checked(
          AuthVerdict::throttled, static_cast<std::int64_t>(uv_now(self->context_.loop->loop())));
      self->pump();
    });
    return;
  }
  struct Check {
    uv_work_t request{};
    std::shared_ptr<InboundConnection> connection;
    std::shared_ptr<const policy::PasswordChecker> passwords;
    policy::PasswordClient client;
    Credentials credentials;
    policy::PasswordCheck result;
  };
  policy::PasswordClient client{.address = peer_address_, .local = std::nullopt};
  if (auto local = stream_->local())
    client.local = dns::IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&*local));
  auto* check = new Check{
      {}, shared_from_this(), settings_->passwords, std::move(client), std::move(credentials), {}};
  check->request.data = check;
  uv_queue_work(
      context_.loop->loop(), &check->request,
      [](uv_work_t* request) {
        auto* check = static_cast<Check*>(request->data);
        std::string& password = check->credentials.password;
        // No checker means no AUTH offered, so no credentials: refused all the same.
        if (check->passwords)
          check->result = check->passwords->check(check->credentials.user, password, check->client);
        OPENSSL_cleanse(password.data(), password.size());
      },
      [](uv_work_t* request, int) {
        std::unique_ptr<Check> check(static_cast<Check*>(request->data));
        check->connection->on_checked(check->credentials.user, check->result);
      });
}

// An unavailable check (Dovecot down, say) is no failed password: the throttle does not count
// it, and the client is told to try again later.
void InboundConnection::on_checked(const std::string& user, const policy::PasswordCheck& result) {
  const std::string client = peer_address_.to_string();
  AuthVerdict verdict = AuthVerdict::accepted;
  switch (result.verdict) {
    case policy::PasswordVerdict::accepted:
      context_.auth_throttle->succeeded(peer_address_);
      spdlog::info("event=auth_ok listener={} client={} user={}", listener_.name, client,
                   quoted(user));
      break;
    case policy::PasswordVerdict::refused: {
      verdict = AuthVerdict::rejected;
      const std::uint32_t failures =
          context_.auth_throttle->failed(peer_address_, AuthThrottle::Clock::now());
      spdlog::warn("event=auth_failed listener={} client={} user={} recent_failures={}",
                   listener_.name, client, quoted(user), failures);
      break;
    }
    case policy::PasswordVerdict::unavailable:
      verdict = AuthVerdict::unavailable;
      spdlog::error("event=auth_unavailable listener={} client={} user={} error={}", listener_.name,
                    client, quoted(user), quoted(result.detail));
      break;
  }
  if (closing_) return;
  session_->credentials_checked(verdict, static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

// The sender waits on the policy checks; reading stops meanwhile, like for AUTH.
void InboundConnection::check_sender(const SenderCheck& check) {
  stream_->stop_reading();
  uv_timer_stop(&timer_);
  checks_->check_sender(
      check, [self = shared_from_this()](SenderVerdict verdict, std::string detail) {
        if (self->closing_) return;
        if (verdict != SenderVerdict::accepted) {
          spdlog::info("event=sender_refused listener={} client={} reason={}", self->listener_.name,
                       self->peer_address_.to_string(), quoted(detail));
        }
        self->session_->sender_checked(
            verdict, detail, static_cast<std::int64_t>(uv_now(self->context_.loop->loop())));
        self->pump();
      });
}

// The RCPT waits for our mailbox server's word on the recipient; reading stops meanwhile.
void InboundConnection::verify_recipient(const std::string& recipient) {
  stream_->stop_reading();
  uv_timer_stop(&timer_);
  auto done = [self = shared_from_this(), recipient](RecipientVerdict verdict) {
    if (self->closing_) return;
    if (verdict != RecipientVerdict::exists) {
      spdlog::info("event=recipient_refused listener={} client={} rcpt={} reason={}",
                   self->listener_.name, self->peer_address_.to_string(), recipient,
                   verdict == RecipientVerdict::unknown ? "unknown" : "not_verified");
    }
    self->session_->recipient_checked(
        verdict, static_cast<std::int64_t>(uv_now(self->context_.loop->loop())));
    self->pump();
  };
  // Without a verifier (a host that has none) the recipient is taken as it is.
  if (context_.verifier == nullptr) return done(RecipientVerdict::exists);
  context_.verifier->verify(recipient, std::move(done));
}

// Content checks for strangers' mail, signatures for our users', then the store.
void InboundConnection::check_and_store(queue::Message message) {
  MessageCheckInput input;
  input.settings = settings_->policy;
  input.resolver = context_.resolver;
  input.loop = context_.loop;
  input.metrics = context_.metrics;
  input.authserv_id = settings_->session->hostname;
  input.trusted = session_->has_relay_rights();
  if (checks_) {
    input.client_results = checks_->results();
    input.spf = checks_->spf();
  }
  check_message(std::move(input), std::move(message),
                [self = shared_from_this()](CheckedMessage checked) {
                  if (!checked.error.empty()) {
                    // Signing failed: the client tries again rather than our mail going out
                    // unsigned.
                    if (self->closing_) return;
                    self->session_->message_stored(
                        {queue::StoreErrorKind::io_error, checked.error},
                        static_cast<std::int64_t>(uv_now(self->context_.loop->loop())));
                    self->pump();
                    return;
                  }
                  self->store(std::move(checked.message));
                });
}

void InboundConnection::store(queue::Message message) {
  net::LoopThread* loop = context_.loop;
  const queue::MessageId id = message.envelope.id;
  context_.store->submit(std::move(message),
                         [self = shared_from_this(), loop, id](const queue::StoreResult& result) {
                           loop->post([self, id, result] { self->on_stored(id, result); });
                         });
}

void InboundConnection::on_stored(queue::MessageId id, const queue::StoreResult& result) {
  const double seconds = static_cast<double>(uv_hrtime() - store_started_ns_) / 1e9;
  context_.metrics->accept_duration().Observe(seconds);
  if (result.ok()) {
    if (context_.census) context_.census->messages.fetch_add(1, std::memory_order_relaxed);
    if (context_.deliver) context_.deliver(id);
  } else {
    spdlog::error("event=store_failed id={} error={}", queue::format_id(id), quoted(result.detail));
  }
  if (closing_) return;  // the client left meanwhile; the message is stored all the same
  session_->message_stored(result, static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

void InboundConnection::arm_timer() {
  const auto now = static_cast<std::int64_t>(uv_now(context_.loop->loop()));
  const std::int64_t delay = std::max<std::int64_t>(0, session_->deadline_ms() - now);
  uv_timer_start(&timer_, &InboundConnection::on_timer, static_cast<std::uint64_t>(delay), 0);
}

// Replies already written still go out, the session's last words included; the connection
// counts as open until they have.
void InboundConnection::close() {
  if (closing_) return;
  closing_ = true;
  stream_->close_after_writes();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
    static_cast<InboundConnection*>(handle->data)->handle_closed();
  });
}

void InboundConnection::stream_read(std::string_view bytes) {
  if (closing_) return;
  if (awaiting_proxy_) return read_proxy_header(bytes);
  session_->receive(bytes, static_cast<std::int64_t>(uv_now(context_.loop->loop())));
  pump();
}

// The client left or the socket failed: nothing more can be written.
void InboundConnection::stream_ended(std::string_view error) {
  if (handshake_started_ns_ != 0) {
    handshake_started_ns_ = 0;
    context_.metrics->tls_handshakes(metrics::Direction::inbound, metrics::TlsResult::failed)
        .Increment();
    spdlog::info("event=tls_failed listener={} client={} error={}", listener_.name,
                 peer_address_.to_string(), quoted(error));
  }
  stream_->close();
  close();
}

void InboundConnection::stream_closed() {
  stream_ = nullptr;
  if (session_) {
    context_.connections.erase(this);
    context_.metrics->inbound_connections().Decrement();
  }
  if (counted_) listener_.connections.fetch_sub(1, std::memory_order_relaxed);
  counted_ = false;
  if (client_counted_) listener_.clients.release(peer_address_);
  client_counted_ = false;
  handle_closed();
}

void InboundConnection::on_timer(uv_timer_t* timer) {
  auto* connection = static_cast<InboundConnection*>(timer->data);
  if (connection->closing_) return;
  if (!connection->session_) {  // no PROXY header in time
    spdlog::warn("event=proxy_invalid listener={} peer={} error=\"no header in time\"",
                 connection->listener_.name, connection->peer_address_.to_string());
    connection->close();
    return;
  }
  connection->session_->timed_out(static_cast<std::int64_t>(uv_now(timer->loop)));
  connection->pump();
}

void InboundConnection::handle_closed() {
  if (--open_handles_ == 0) self_.reset();  // may delete the connection
}

void InboundConnection::message_accepted(const queue::Envelope& envelope) {
  listener_.received->Increment();
  std::string user;  // who submitted it, when AUTH said
  if (const std::string& name = session_->authenticated_user(); !name.empty()) {
    user = " user=";
    append_logfmt_value(user, name);
  }
  spdlog::info("event=accepted id={} size={} from={} rcpts={} client={} listener={}{}",
               queue::format_id(envelope.id), envelope.size, quoted(envelope.sender),
               envelope.recipients.size(), envelope.client_address, listener_.name, user);
}

void InboundConnection::message_rejected(metrics::RejectReason reason) {
  listener_.rejected[static_cast<std::size_t>(reason)]->Increment();
}

// The session's path, at log level debug: "why was this client cut off" answered from logs.
void InboundConnection::state_changed(SessionState from, SessionState to) {
  if (!spdlog::should_log(spdlog::level::debug)) return;
  spdlog::debug("event=session_state listener={} client_port={} from={} to={}", listener_.name,
                peer_port_, to_string(from), to_string(to));
}

}  // namespace relayq::mta
