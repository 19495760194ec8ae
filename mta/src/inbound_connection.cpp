// One accepted SMTP connection: bytes from libuv into the session, replies back out, complete
// messages to the store, and the session's deadline on a timer.
#include "inbound_connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "log_format.hpp"
#include "policy/ip_address.hpp"

namespace relayq::mta {

namespace {

struct WriteRequest {
  uv_write_t req{};
  std::string data;
};

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
  uv_tcp_init(context.loop->loop(), &c.tcp_);
  uv_timer_init(context.loop->loop(), &c.timer_);
  c.tcp_.data = &c;
  c.timer_.data = &c;
  c.open_handles_ = 2;
  c.self_ = std::move(connection);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c.tcp_)) != 0) {
    c.close();
    return;
  }
  const std::uint32_t before = listener.connections.fetch_add(1, std::memory_order_relaxed);
  c.counted_ = true;
  c.start(before >= listener.max_connections);
}

void InboundConnection::start(bool over_limit) {
  const auto session_config = listener_.session_config.load();
  if (over_limit) {
    closing_ = true;
    write("421 4.3.2 " + session_config->hostname + " Too many connections, try again later\r\n");
    return;
  }
  sockaddr_storage peer{};
  int length = sizeof(peer);
  PeerInfo info;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    if (auto address = policy::IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)))
      info.address = *address;
    info.port = ntohs(peer.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&peer)->sin_port);
  }
  uv_tcp_nodelay(&tcp_, 1);
  session_ = std::make_unique<ServerSession>(session_config, info, this);
  context_.connections.insert(this);
  context_.metrics->inbound_connections().Increment();
  session_->start(static_cast<std::int64_t>(uv_now(context_.loop->loop())));
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
  if (closing_) return;
  if (context_.shutting_down && accepts_shutdown_now(session_->state())) session_->shut_down();
  std::string output = session_->take_output();
  if (!output.empty()) write(std::move(output));
  if (auto message = session_->take_message()) {
    store_started_ns_ = uv_hrtime();
    if (reading_) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      reading_ = false;
    }
    uv_timer_stop(&timer_);
    LoopThread* loop = context_.loop;
    const queue::MessageId id = message->envelope.id;
    context_.store->submit(std::move(*message),
                           [self = shared_from_this(), loop, id](const queue::StoreResult& result) {
                             loop->post([self, id, result] { self->on_stored(id, result); });
                           });
    return;
  }
  if (session_->closed()) {
    closing_ = true;
    if (pending_writes_ == 0) close();
    return;
  }
  if (session_->state() != SessionState::storing) {
    start_reading();
    arm_timer();
  }
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

void InboundConnection::start_reading() {
  if (reading_ || closing_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &InboundConnection::on_alloc,
                    &InboundConnection::on_read) == 0)
    reading_ = true;
}

void InboundConnection::arm_timer() {
  const auto now = static_cast<std::int64_t>(uv_now(context_.loop->loop()));
  const std::int64_t delay = std::max<std::int64_t>(0, session_->deadline_ms() - now);
  uv_timer_start(&timer_, &InboundConnection::on_timer, static_cast<std::uint64_t>(delay), 0);
}

void InboundConnection::write(std::string data) {
  uv_buf_t buf = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  // Most replies fit the socket buffer at once: no allocation, no callback.
  if (pending_writes_ == 0) {
    const int written = uv_try_write(stream, &buf, 1);
    if (written == static_cast<int>(data.size())) {
      if (closing_) close();
      return;
    }
    if (written > 0) data.erase(0, static_cast<std::size_t>(written));
  }
  auto* request = new WriteRequest;
  request->data = std::move(data);
  request->req.data = this;
  buf = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  ++pending_writes_;
  const int rc = uv_write(&request->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* request = reinterpret_cast<WriteRequest*>(req);
    auto* connection = static_cast<InboundConnection*>(req->data);
    delete request;
    --connection->pending_writes_;
    if (status < 0 || (connection->closing_ && connection->pending_writes_ == 0))
      connection->close();
  });
  if (rc != 0) {
    delete request;
    --pending_writes_;
    close();
  }
}

void InboundConnection::close() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
  closing_ = true;
  if (session_) {
    context_.connections.erase(this);
    context_.metrics->inbound_connections().Decrement();
  }
  if (counted_) listener_.connections.fetch_sub(1, std::memory_order_relaxed);
  counted_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &InboundConnection::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &InboundConnection::on_closed);
}

void InboundConnection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* connection = static_cast<InboundConnection*>(handle->data);
  *buf = uv_buf_init(connection->context_.read_buffer, sizeof(connection->context_.read_buffer));
}

void InboundConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* connection = static_cast<InboundConnection*>(stream->data);
  if (nread < 0) {
    connection->close();
    return;
  }
  if (nread == 0 || connection->closing_) return;
  connection->session_->receive(std::string_view(buf->base, static_cast<std::size_t>(nread)),
                                static_cast<std::int64_t>(uv_now(stream->loop)));
  connection->pump();
}

void InboundConnection::on_timer(uv_timer_t* timer) {
  auto* connection = static_cast<InboundConnection*>(timer->data);
  if (connection->closing_) return;
  connection->session_->timed_out(static_cast<std::int64_t>(uv_now(timer->loop)));
  connection->pump();
}

void InboundConnection::on_closed(uv_handle_t* handle) {
  auto* connection = static_cast<InboundConnection*>(handle->data);
  if (--connection->open_handles_ == 0) connection->self_.reset();  // may delete the connection
}

void InboundConnection::message_accepted(const queue::Envelope& envelope) {
  listener_.received->Increment();
  spdlog::info("event=accepted id={} size={} from={} rcpts={} client={} listener={}",
               queue::format_id(envelope.id), envelope.size, quoted(envelope.sender),
               envelope.recipients.size(), envelope.client_address, listener_.name);
}

void InboundConnection::message_rejected(std::string_view reason) {
  if (auto it = listener_.rejected.find(reason); it != listener_.rejected.end())
    it->second->Increment();
}

}  // namespace relayq::mta
