// One outbound SMTP connection: next hops tried in order, then transactions one after another.
// Loop thread only.
#include "mta/outbound/connection.hpp"

#include <string_view>

#include <spdlog/spdlog.h>

#include "mta/common/log_format.hpp"

#include "mta/net/socket_stream.hpp"
#include "mta/net/tls_stream.hpp"

namespace relayq::mta {

OutboundConnection::OutboundConnection(uv_loop_t* loop, ConnectionEvents& events,
                                       std::string destination, std::vector<dns::NextHop> hops,
                                       std::string unix_path,
                                       std::shared_ptr<const ClientSessionConfig> session_config,
                                       OutboundTimeouts timeouts, OutboundTls tls)
    : loop_(loop),
      events_(events),
      destination_(std::move(destination)),
      // A unix socket is one hop; the loops below count it like any other.
      hops_(unix_path.empty() ? std::move(hops)
                              : std::vector<dns::NextHop>{{.host = "localhost",
                                                           .address = {},
                                                           .port = 0,
                                                           .preference = 0}}),
      unix_path_(std::move(unix_path)),
      session_config_(std::move(session_config)),
      timeouts_(timeouts),
      tls_(std::move(tls)) {}

OutboundConnection::~OutboundConnection() = default;

std::int64_t OutboundConnection::now_ms() const {
  return static_cast<std::int64_t>(uv_now(loop_));
}

bool OutboundConnection::idle() const {
  return ready_ && !closing_ && !job_ && session_ && session_->state() == ClientState::idle;
}

void OutboundConnection::start() {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  open_handles_ = 1;
  connect_next_hop();
}

std::string OutboundConnection::nexthop() const {
  if (hop_ >= hops_.size()) return {};
  if (!unix_path_.empty()) return "unix:" + unix_path_;
  const auto& hop = hops_[hop_];
  const std::string ip = (hop.address.v6 ? "IPv6:" : "") + hop.address.to_string();
  return hop.host + "[" + ip + "]:" + std::to_string(hop.port);
}

const std::string& OutboundConnection::remote_host() const {
  static const std::string none;
  return hop_ < hops_.size() ? hops_[hop_].host : none;
}

void OutboundConnection::connect_next_hop() {
  if (hop_ >= hops_.size()) {
    events_.connection_failed(*this, last_failure_);
    close();
    return;
  }
  plaintext_retry_ = false;
  connect_hop();
}

void OutboundConnection::connect_hop() {
  const auto& hop = hops_[hop_];
  handshake_failed_ = false;
  tls_summary_.clear();
  session_ =
      std::make_unique<ClientSession>(plaintext_retry_ ? tls_.plaintext_fallback : session_config_);
  if (spdlog::should_log(spdlog::level::debug)) {
    session_->set_trace([this](ClientState from, ClientState to) {
      spdlog::debug("event=client_state destination={} nexthop={} from={} to={}", destination_,
                    nexthop(), to_string(from), to_string(to));
    });
  }
  int rc = 0;
  ++open_handles_;
  connected_ = false;
  if (!unix_path_.empty()) {
    stream_ = net::SocketStream::connect_unix(loop_, unix_path_, *this);
    arm_timer(timeouts_.connect_ms);
    return;
  }
  const sockaddr_storage address = hop.address.to_sockaddr(hop.port);
  stream_ =
      net::SocketStream::connect(loop_, reinterpret_cast<const sockaddr&>(address), *this, rc);
  if (rc != 0) {
    stream_ = nullptr;  // closing itself already
    hop_failed({0, "connect to " + nexthop() + ": " + uv_strerror(rc)});
    return;
  }
  arm_timer(timeouts_.connect_ms);
}

// This hop did not work out (no connection, or no greeting we could use): on to the next.
void OutboundConnection::hop_failed(const SmtpReply& reason) {
  last_failure_ = reason;
  close_stream();
  ++hop_;
  connect_next_hop();
}

void OutboundConnection::close_stream() {
  if (stream_ == nullptr) return;
  stream_->close();  // stream_closed() follows
  stream_ = nullptr;
}

void OutboundConnection::stream_connected(int status) {
  if (status < 0) {
    hop_failed({0, "connect to " + nexthop() + ": " + uv_strerror(status)});
    return;
  }
  connected_ = true;
  stream_->start_reading();
  session_->connected(now_ms());
  pump();
}

// The server said 220 to STARTTLS: from here on the hop's stream is TLS.
void OutboundConnection::start_tls() {
  if (tls_.context == nullptr || stream_ == nullptr) {
    session_->tls_failed("no TLS context");
    return;
  }
  const auto& hop = hops_[hop_];
  handshaking_ = true;
  auto* tls =
      net::TlsStream::client(stream_, tls_.context, {hop.host, tls_.sessions, nexthop()}, *this);
  stream_ = tls;
  tls->begin();
}

void OutboundConnection::stream_secured(const TlsInfo& info) {
  handshaking_ = false;
  // Made once: every transaction on this connection records it.
  tls_summary_ = info.version + " " + info.cipher + (info.verified ? " verified" : " unverified") +
                 (info.resumed ? " resumed" : "");
  events_.tls_handshake_done(*this, true);
  session_->tls_established(now_ms());
  pump();
}

void OutboundConnection::stream_read(std::string_view bytes) {
  session_->receive(bytes, now_ms());
  pump();
}

// The session times the wait for a reply from when its command has left (RFC 5321 4.5.3.2).
void OutboundConnection::stream_written() {
  session_->output_written(now_ms());
}

void OutboundConnection::stream_ended(std::string_view error) {
  if (handshaking_) {
    handshaking_ = false;
    handshake_failed_ = true;
    events_.tls_handshake_done(*this, false);
    // The session says "TLS handshake failed: " itself.
    constexpr std::string_view kSaid = "TLS handshake failed: ";
    session_->tls_failed(error.starts_with(kSaid) ? error.substr(kSaid.size()) : error);
    pump();
    return;
  }
  session_->connection_lost(error.empty() ? "connection closed by " + nexthop()
                                          : std::string(error));
  pump();
}

void OutboundConnection::stream_closed() {
  handle_closed();
}

void OutboundConnection::on_timer(uv_timer_t* timer) {
  auto& self = *static_cast<OutboundConnection*>(timer->data);
  if (self.stream_ != nullptr && !self.connected_) {
    self.hop_failed({0, "connect to " + self.nexthop() + ": timed out"});
    return;
  }
  if (self.idle_wait_ && self.idle()) {
    self.quit();
    return;
  }
  if (self.session_) self.session_->timed_out(self.now_ms());
  self.pump();
}

// Moves what the session produced on: bytes to the socket, a result to the engine, a closed
// session to the next hop (before it was ever ready) or to closing.
void OutboundConnection::pump() {
  if (closing_ || !session_) return;
  std::string output = session_->take_output();
  if (!output.empty()) write(std::move(output));
  if (session_->take_starttls()) start_tls();
  if (auto result = session_->take_result()) {
    Job job = std::move(*job_);
    job_.reset();
    events_.transaction_done(*this, std::move(job), *result);
    // The engine has given us the next job (send() pumped it) or set us idle; a session that
    // closed meanwhile is dealt with below.
    if (closing_ || !session_->closed()) return;
  }
  const ClientState state = session_->state();
  if (state == ClientState::closed) {
    // TLS that broke before the hop greeted us over it: in TLS 1.3 a server refuses (a client
    // certificate, say) only after the client's side of the handshake is done.
    const bool tls_broke =
        handshake_failed_ || (!tls_summary_.empty() && session_->setup_failure() &&
                              session_->setup_failure()->code == 0);
    if (!ready_ && tls_broke && tls_.plaintext_fallback && !plaintext_retry_) {
      // Opportunistic TLS that failed: plaintext was acceptable, so this hop once more.
      spdlog::info("event=tls_fallback destination={} nexthop={} reason={}", destination_,
                   nexthop(), quoted(session_->setup_failure().value_or(SmtpReply{}).text));
      close_stream();
      plaintext_retry_ = true;
      connect_hop();
    } else if (!ready_) {
      hop_failed(session_->setup_failure().value_or(SmtpReply{0, "connection closed"}));
    } else {
      close();
    }
    return;
  }
  if (state == ClientState::idle && !ready_) {
    ready_ = true;
    uv_timer_stop(&timer_);
    events_.connection_ready(*this);
    return;
  }
  if (state != ClientState::idle) {
    arm_timer(session_->deadline_ms() - now_ms());
  }
}

void OutboundConnection::send(Job job, OutboundMessage message) {
  job_ = std::move(job);
  ++transactions_;
  idle_wait_ = false;
  session_->send(std::move(message), now_ms());
  pump();
}

void OutboundConnection::idle_until_closed() {
  idle_wait_ = true;
  arm_timer(timeouts_.idle_ms);
}

void OutboundConnection::quit() {
  if (closing_) return;
  if (session_ && session_->state() == ClientState::idle && stream_ != nullptr) {
    idle_wait_ = false;
    session_->quit(now_ms());
    pump();
    return;
  }
  close();
}

void OutboundConnection::shut_down() {
  if (closing_) return;
  if (session_ && session_->state() == ClientState::idle && stream_ != nullptr) {
    session_->quit(now_ms());
    write(session_->take_output());
  }
  close();
}

void OutboundConnection::arm_timer(std::int64_t delay_ms) {
  uv_timer_start(&timer_, &on_timer,
                 static_cast<std::uint64_t>(std::max<std::int64_t>(0, delay_ms)), 0);
}

void OutboundConnection::write(std::string data) {
  if (stream_ != nullptr) stream_->write(std::move(data));
}

void OutboundConnection::close() {
  if (closing_) return;
  closing_ = true;
  uv_timer_stop(&timer_);
  close_stream();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
    static_cast<OutboundConnection*>(handle->data)->handle_closed();
  });
}

void OutboundConnection::handle_closed() {
  if (--open_handles_ == 0) events_.connection_closed(*this);  // may destroy this connection
}

}  // namespace relayq::mta
