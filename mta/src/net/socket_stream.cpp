// net::Stream over a TCP or unix socket: uv_try_write first (most replies fit the socket buffer: no
// copy, no callback), uv_write for the rest; one read buffer per loop thread, since every user
// consumes what it is given at once. Loop thread only.
#include "mta/net/socket_stream.hpp"

namespace relayq::mta::net {

namespace {

struct WriteRequest {
  uv_write_t req{};
  std::string data;
};

// One end's address, through uv_tcp_getpeername or uv_tcp_getsockname.
std::optional<sockaddr_storage> address_of(const uv_tcp_t& tcp,
                                           int (*get)(const uv_tcp_t*, sockaddr*, int*)) {
  sockaddr_storage address{};
  int length = sizeof(address);
  if (get(&tcp, reinterpret_cast<sockaddr*>(&address), &length) != 0) return std::nullopt;
  return address;
}

}  // namespace

SocketStream::SocketStream(uv_loop_t* loop, StreamEvents* events, Kind kind)
    : kind_(kind), events_(events) {
  if (kind == Kind::tcp) {
    uv_tcp_init(loop, &handle_.tcp);
  } else {
    uv_pipe_init(loop, &handle_.pipe, /*ipc=*/0);
  }
  handle_.stream.data = this;
  connect_.data = this;
}

SocketStream* SocketStream::accept(uv_stream_t* server, StreamEvents& events) {
  auto* stream = new SocketStream(server->loop, nullptr, Kind::tcp);
  if (uv_accept(server, stream->stream()) != 0) {
    stream->close();  // frees itself; nobody hears of it
    return nullptr;
  }
  stream->events_ = &events;
  uv_tcp_nodelay(&stream->handle_.tcp, 1);
  return stream;
}

SocketStream* SocketStream::connect(uv_loop_t* loop, const sockaddr& address, StreamEvents& events,
                                    int& error) {
  auto* stream = new SocketStream(loop, &events, Kind::tcp);
  error =
      uv_tcp_connect(&stream->connect_, &stream->handle_.tcp, &address, &SocketStream::on_connect);
  if (error != 0) stream->close();
  return stream;
}

SocketStream* SocketStream::connect_unix(uv_loop_t* loop, const std::string& path,
                                         StreamEvents& events) {
  auto* stream = new SocketStream(loop, &events, Kind::unix_socket);
  uv_pipe_connect(&stream->connect_, &stream->handle_.pipe, path.c_str(),
                  &SocketStream::on_connect);
  return stream;
}

void SocketStream::on_connect(uv_connect_t* request, int status) {
  auto* stream = static_cast<SocketStream*>(request->data);
  if (stream->closing_) return;  // given up on meanwhile (a connect timeout, say)
  if (status == 0 && stream->kind_ == Kind::tcp) uv_tcp_nodelay(&stream->handle_.tcp, 1);
  stream->events_->stream_connected(status);
}

void SocketStream::start_reading() {
  if (reading_ || closing_ || ended_) return;
  if (uv_read_start(stream(), &SocketStream::on_alloc, &SocketStream::on_read) == 0)
    reading_ = true;
}

void SocketStream::stop_reading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void SocketStream::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static thread_local char buffer[64 * 1024];
  *buf = uv_buf_init(buffer, sizeof(buffer));
}

void SocketStream::on_read(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buf) {
  auto* stream = static_cast<SocketStream*>(handle->data);
  if (stream->closing_) return;
  if (nread < 0) {
    stream->end(static_cast<int>(nread));
  } else if (nread > 0) {
    stream->events_->stream_read(std::string_view(buf->base, static_cast<std::size_t>(nread)));
  }
}

void SocketStream::write(std::string bytes) {
  if (closing_ || ended_ || bytes.empty()) return;
  uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  if (pending_writes_ == 0) {
    const int written = uv_try_write(stream(), &buf, 1);
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
  if (const int rc = uv_write(&request->req, stream(), &buf, 1, &SocketStream::on_write); rc != 0) {
    delete request;
    --pending_writes_;
    end(rc);
  }
}

void SocketStream::on_write(uv_write_t* req, int status) {
  auto* stream = static_cast<SocketStream*>(req->data);
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
void SocketStream::end(int status) {
  if (ended_) return;
  ended_ = true;
  stop_reading();
  events_->stream_ended(status == UV_EOF ? std::string_view() : uv_strerror(status));
}

void SocketStream::close_after_writes() {
  if (pending_writes_ == 0) {
    close();
  } else {
    close_when_written_ = true;
  }
}

void SocketStream::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(stream()), &SocketStream::on_closed);
}

void SocketStream::on_closed(uv_handle_t* handle) {
  auto* stream = static_cast<SocketStream*>(handle->data);
  StreamEvents* events = stream->events_;
  delete stream;
  if (events != nullptr) events->stream_closed();
}

// A unix socket has no address that means anything to SMTP (nor needs one: LMTP only).
std::optional<sockaddr_storage> SocketStream::peer() const {
  if (kind_ != Kind::tcp) return std::nullopt;
  return address_of(handle_.tcp, &uv_tcp_getpeername);
}

std::optional<sockaddr_storage> SocketStream::local() const {
  if (kind_ != Kind::tcp) return std::nullopt;
  return address_of(handle_.tcp, &uv_tcp_getsockname);
}

}  // namespace relayq::mta::net
