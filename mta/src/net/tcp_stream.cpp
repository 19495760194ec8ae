// net::Stream over TCP: uv_try_write first (most replies fit the socket buffer: no copy, no
// callback), uv_write for the rest; one read buffer per loop thread, since every user consumes
// what it is given at once. Loop thread only.
#include "mta/net/tcp_stream.hpp"

namespace relayq::mta::net {

namespace {

struct WriteRequest {
  uv_write_t req{};
  std::string data;
};

uv_stream_t* as_stream(uv_tcp_t* tcp) {
  return reinterpret_cast<uv_stream_t*>(tcp);
}

}  // namespace

TcpStream::TcpStream(uv_loop_t* loop, StreamEvents* events) : events_(events) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  connect_.data = this;
}

TcpStream* TcpStream::accept(uv_stream_t* server, StreamEvents& events) {
  auto* stream = new TcpStream(server->loop, nullptr);
  if (uv_accept(server, as_stream(&stream->tcp_)) != 0) {
    stream->close();  // frees itself; nobody hears of it
    return nullptr;
  }
  stream->events_ = &events;
  uv_tcp_nodelay(&stream->tcp_, 1);
  return stream;
}

TcpStream* TcpStream::connect(uv_loop_t* loop, const sockaddr& address, StreamEvents& events,
                              int& error) {
  auto* stream = new TcpStream(loop, &events);
  error = uv_tcp_connect(&stream->connect_, &stream->tcp_, &address, &TcpStream::on_connect);
  if (error != 0) stream->close();
  return stream;
}

void TcpStream::on_connect(uv_connect_t* request, int status) {
  auto* stream = static_cast<TcpStream*>(request->data);
  if (stream->closing_) return;  // given up on meanwhile (a connect timeout, say)
  if (status == 0) uv_tcp_nodelay(&stream->tcp_, 1);
  stream->events_->stream_connected(status);
}

void TcpStream::start_reading() {
  if (reading_ || closing_ || ended_) return;
  if (uv_read_start(as_stream(&tcp_), &TcpStream::on_alloc, &TcpStream::on_read) == 0)
    reading_ = true;
}

void TcpStream::stop_reading() {
  if (!reading_) return;
  uv_read_stop(as_stream(&tcp_));
  reading_ = false;
}

void TcpStream::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static thread_local char buffer[64 * 1024];
  *buf = uv_buf_init(buffer, sizeof(buffer));
}

void TcpStream::on_read(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buf) {
  auto* stream = static_cast<TcpStream*>(handle->data);
  if (stream->closing_) return;
  if (nread < 0) {
    stream->end(static_cast<int>(nread));
  } else if (nread > 0) {
    stream->events_->stream_read(std::string_view(buf->base, static_cast<std::size_t>(nread)));
  }
}

void TcpStream::write(std::string bytes) {
  if (closing_ || ended_ || bytes.empty()) return;
  uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  if (pending_writes_ == 0) {
    const int written = uv_try_write(as_stream(&tcp_), &buf, 1);
    if (written == static_cast<int>(bytes.size())) {
      events_->stream_written();
      return;
    }
    if (written > 0) bytes.erase(0, static_cast<std::size_t>(written));
  }
  auto* request = new WriteRequest;
  request->data = std::move(bytes);
  request->req.data = this;
  buf = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  ++pending_writes_;
  if (const int rc = uv_write(&request->req, as_stream(&tcp_), &buf, 1, &TcpStream::on_write);
      rc != 0) {
    delete request;
    --pending_writes_;
    end(rc);
  }
}

void TcpStream::on_write(uv_write_t* req, int status) {
  auto* stream = static_cast<TcpStream*>(req->data);
  delete reinterpret_cast<WriteRequest*>(req);
  --stream->pending_writes_;
  if (stream->closing_) return;
  if (status < 0) {
    stream->end(status);
    return;
  }
  stream->events_->stream_written();
  if (stream->close_when_written_ && stream->pending_writes_ == 0) stream->close();
}

// The peer is gone or the socket failed: no more reads, and the user decides what follows.
void TcpStream::end(int status) {
  if (ended_) return;
  ended_ = true;
  stop_reading();
  events_->stream_ended(status == UV_EOF ? std::string_view() : uv_strerror(status));
}

void TcpStream::close_after_writes() {
  if (pending_writes_ == 0) {
    close();
  } else {
    close_when_written_ = true;
  }
}

void TcpStream::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpStream::on_closed);
}

void TcpStream::on_closed(uv_handle_t* handle) {
  auto* stream = static_cast<TcpStream*>(handle->data);
  StreamEvents* events = stream->events_;
  delete stream;
  if (events != nullptr) events->stream_closed();
}

std::optional<sockaddr_storage> TcpStream::peer() const {
  sockaddr_storage address{};
  int length = sizeof(address);
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return std::nullopt;
  return address;
}

}  // namespace relayq::mta::net
