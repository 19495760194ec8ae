// net::Stream over a libuv socket: TCP, accepted from a listen socket or connected to a next
// hop, or a unix socket connected to a local next hop (LMTP to a mailbox server). Loop thread
// only.
#pragma once

#include <uv.h>

#include <string>

#include "mta/net/stream.hpp"

namespace relayq::mta::net {

class SocketStream final : public Stream {
 public:
  // Accepts one pending connection of `server`. Null when there was none to accept (nothing
  // is then told to `events`).
  static SocketStream* accept(uv_stream_t* server, StreamEvents& events);
  // Starts connecting to `address`; stream_connected() follows. On an error at once the
  // stream closes itself (stream_closed() follows) and the libuv error code is returned in
  // `error`, else 0.
  static SocketStream* connect(uv_loop_t* loop, const sockaddr& address, StreamEvents& events,
                               int& error);
  // The same for the unix socket at `path`; an error always comes through stream_connected().
  static SocketStream* connect_unix(uv_loop_t* loop, const std::string& path, StreamEvents& events);

  void set_events(StreamEvents& events) override { events_ = &events; }
  void start_reading() override;
  void stop_reading() override;
  void write(std::string bytes) override;
  void close_after_writes() override;
  void close() override;
  std::optional<sockaddr_storage> peer() const override;
  std::optional<sockaddr_storage> local() const override;

 private:
  enum class Kind { tcp, unix_socket };
  SocketStream(uv_loop_t* loop, StreamEvents* events, Kind kind);
  ~SocketStream() override = default;

  void end(int status);

  static void on_connect(uv_connect_t* request, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* request, int status);
  static void on_closed(uv_handle_t* handle);

  uv_stream_t* stream() { return &handle_.stream; }
  const uv_stream_t* stream() const { return &handle_.stream; }

  // libuv's handles all begin with uv_stream_t's fields: either kind is read and written as
  // a stream.
  union Handle {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_{};
  Kind kind_;
  uv_connect_t connect_{};
  StreamEvents* events_;  // null for an accept that failed: nobody to tell
  std::size_t pending_writes_ = 0;
  bool reading_ = false;
  bool ended_ = false;
  bool close_when_written_ = false;
  bool closing_ = false;
};

}  // namespace relayq::mta::net
