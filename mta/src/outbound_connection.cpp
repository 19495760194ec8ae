// One outbound SMTP connection: next hops tried in order, then transactions one after another.
#include "outbound_connection.hpp"

#include <string_view>

namespace relayq::mta {

// One TCP attempt. It outlives its connection's interest in it until libuv has closed it.
struct OutboundConnection::Socket {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  OutboundConnection* owner = nullptr;
  bool connected = false;
};

namespace {

struct WriteRequest {
  uv_write_t req{};
  std::string data;
};

std::int64_t now_ms(uv_loop_t* loop) {
  return static_cast<std::int64_t>(uv_now(loop));
}

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  // Reads are consumed at once by the session, so one buffer per loop thread is enough.
  static thread_local char buffer[64 * 1024];
  *buf = uv_buf_init(buffer, sizeof(buffer));
}

}  // namespace

OutboundConnection::OutboundConnection(uv_loop_t* loop, ConnectionEvents& events,
                                       std::string destination, std::vector<dns::NextHop> hops,
                                       std::shared_ptr<const ClientSessionConfig> session_config,
                                       OutboundTimeouts timeouts)
    : loop_(loop),
      events_(events),
      destination_(std::move(destination)),
      hops_(std::move(hops)),
      session_config_(std::move(session_config)),
      timeouts_(timeouts) {}

OutboundConnection::~OutboundConnection() = default;

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
  const auto& hop = hops_[hop_];
  const std::string ip = hop.address.v6 ? "IPv6:" + hop.address.ip : hop.address.ip;
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
  const auto& hop = hops_[hop_];
  session_ = std::make_unique<ClientSession>(session_config_);
  sockaddr_storage address{};
  const int parsed =
      hop.address.v6
          ? uv_ip6_addr(hop.address.ip.c_str(), hop.port, reinterpret_cast<sockaddr_in6*>(&address))
          : uv_ip4_addr(hop.address.ip.c_str(), hop.port, reinterpret_cast<sockaddr_in*>(&address));
  if (parsed != 0) {
    hop_failed({0, "bad address " + hop.address.ip});
    return;
  }
  socket_ = new Socket;
  socket_->owner = this;
  uv_tcp_init(loop_, &socket_->tcp);
  socket_->tcp.data = socket_;
  socket_->connect.data = socket_;
  ++open_handles_;
  const int rc = uv_tcp_connect(&socket_->connect, &socket_->tcp,
                                reinterpret_cast<const sockaddr*>(&address), &on_connect);
  if (rc != 0) {
    hop_failed({0, "connect to " + nexthop() + ": " + uv_strerror(rc)});
    return;
  }
  arm_timer(timeouts_.connect_ms);
}

// This hop did not work out (no connection, or no greeting we could use): on to the next.
void OutboundConnection::hop_failed(const SmtpReply& reason) {
  last_failure_ = reason;
  close_socket();
  ++hop_;
  connect_next_hop();
}

void OutboundConnection::close_socket() {
  if (socket_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_->tcp), [](uv_handle_t* handle) {
    auto* socket = static_cast<Socket*>(handle->data);
    OutboundConnection* owner = socket->owner;
    delete socket;
    owner->handle_closed();
  });
  socket_ = nullptr;
}

void OutboundConnection::on_connect(uv_connect_t* request, int status) {
  auto* socket = static_cast<Socket*>(request->data);
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->tcp))) return;
  OutboundConnection& self = *socket->owner;
  if (status < 0) {
    self.hop_failed({0, "connect to " + self.nexthop() + ": " + uv_strerror(status)});
    return;
  }
  socket->connected = true;
  uv_tcp_nodelay(&socket->tcp, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&socket->tcp), &on_alloc, &on_read);
  self.session_->connected(static_cast<std::int64_t>(uv_now(self.loop_)));
  self.pump();
}

void OutboundConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* socket = static_cast<Socket*>(stream->data);
  OutboundConnection& self = *socket->owner;
  if (nread < 0) {
    self.session_->connection_lost(nread == UV_EOF
                                       ? "connection closed by " + self.nexthop()
                                       : std::string(uv_strerror(static_cast<int>(nread))));
  } else if (nread > 0) {
    self.session_->receive(std::string_view(buf->base, static_cast<std::size_t>(nread)),
                           static_cast<std::int64_t>(uv_now(self.loop_)));
  }
  self.pump();
}

void OutboundConnection::on_timer(uv_timer_t* timer) {
  auto& self = *static_cast<OutboundConnection*>(timer->data);
  if (self.socket_ != nullptr && !self.socket_->connected) {
    self.hop_failed({0, "connect to " + self.nexthop() + ": timed out"});
    return;
  }
  if (self.idle_wait_ && self.idle()) {
    self.quit();
    return;
  }
  if (self.session_) self.session_->timed_out(static_cast<std::int64_t>(uv_now(self.loop_)));
  self.pump();
}

// Moves what the session produced on: bytes to the socket, a result to the engine, a closed
// session to the next hop (before it was ever ready) or to closing.
void OutboundConnection::pump() {
  if (closing_ || !session_) return;
  std::string output = session_->take_output();
  if (!output.empty()) write(std::move(output));
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
    if (!ready_) {
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
    arm_timer(session_->deadline_ms() - static_cast<std::int64_t>(uv_now(loop_)));
  }
}

void OutboundConnection::send(Job job, OutboundMessage message) {
  job_ = std::move(job);
  idle_wait_ = false;
  session_->send(std::move(message), static_cast<std::int64_t>(uv_now(loop_)));
  pump();
}

void OutboundConnection::idle_until_closed() {
  idle_wait_ = true;
  arm_timer(timeouts_.idle_ms);
}

void OutboundConnection::quit() {
  if (closing_) return;
  if (session_ && session_->state() == ClientState::idle && socket_ != nullptr) {
    idle_wait_ = false;
    session_->quit(static_cast<std::int64_t>(uv_now(loop_)));
    pump();
    return;
  }
  close();
}

void OutboundConnection::shut_down() {
  if (closing_) return;
  if (session_ && session_->state() == ClientState::idle && socket_ != nullptr) {
    session_->quit(static_cast<std::int64_t>(uv_now(loop_)));
    write(session_->take_output());
  }
  close();
}

void OutboundConnection::arm_timer(std::int64_t delay_ms) {
  uv_timer_start(&timer_, &on_timer,
                 static_cast<std::uint64_t>(std::max<std::int64_t>(0, delay_ms)), 0);
}

void OutboundConnection::write(std::string data) {
  if (socket_ == nullptr) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_->tcp);
  uv_buf_t buf = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  // The session times the wait for a reply from when its command has left (RFC 5321 4.5.3.2).
  if (uv_stream_get_write_queue_size(stream) == 0) {
    const int written = uv_try_write(stream, &buf, 1);
    if (written == static_cast<int>(data.size())) {
      session_->output_written(now_ms(loop_));
      return;
    }
    if (written > 0) data.erase(0, static_cast<std::size_t>(written));
  }
  auto* request = new WriteRequest;
  request->data = std::move(data);
  request->req.data = socket_;
  buf = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  // A failed write also fails the next read, which is where the session hears of it.
  const int rc = uv_write(&request->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* socket = static_cast<Socket*>(req->data);
    delete reinterpret_cast<WriteRequest*>(req);
    if (status == 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->tcp)))
      socket->owner->session_->output_written(now_ms(socket->owner->loop_));
  });
  if (rc != 0) delete request;
}

void OutboundConnection::close() {
  if (closing_) return;
  closing_ = true;
  uv_timer_stop(&timer_);
  close_socket();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
    static_cast<OutboundConnection*>(handle->data)->handle_closed();
  });
}

void OutboundConnection::handle_closed() {
  if (--open_handles_ == 0) events_.connection_closed(*this);  // may destroy this connection
}

}  // namespace relayq::mta
