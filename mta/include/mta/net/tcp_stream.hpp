// net::Stream over a libuv TCP handle: accepted from a listen socket or connected to a next hop.
// Loop thread only.
#pragma once

#include <uv.h>

#include "mta/net/stream.hpp"

namespace relayq::mta::net {

class TcpStream final : public Stream {
 public:
  // Accepts one pending connection of `server`. Null when there was none to accept (nothing
  // is then told to `events`).
  static TcpStream* accept(uv_stream_t* server, StreamEvents& events);
  // Starts connecting to `address`; stream_connected() follows. On an error at once the
  // stream closes itself (stream_closed() follows) and the libuv error code is returned in
  // `error`, else 0.
  static TcpStream* connect(uv_loop_t* loop, const sockaddr& address, StreamEvents& events,
                            int& error);

  void set_events(StreamEvents& events) override { events_ = &events; }
  void start_reading() override;
  void stop_reading() override;
  void write(std::string bytes) override;
  void close_after_writes() override;
  void close() override;
  std::optional<sockaddr_storage> peer() const override;

 private:
  TcpStream(uv_loop_t* loop, StreamEvents* events);
  ~TcpStream() override = default;

  void end(int status);

  static void on_connect(uv_connect_t* request, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* request, int status);
  static void on_closed(uv_handle_t* handle);

  uv_tcp_t tcp_{};
  uv_connect_t connect_{};
  StreamEvents* events_;  // null for an accept that failed: nobody to tell
  std::size_t pending_writes_ = 0;
  bool reading_ = false;
  bool ended_ = false;
  bool close_when_written_ = false;
  bool closing_ = false;
};

}  // namespace relayq::mta::net
