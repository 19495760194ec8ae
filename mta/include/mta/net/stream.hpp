// A byte stream on an event loop: the one read/write/close path that inbound and outbound
// connections share. TCP is the first kind; a TLS stream (OpenSSL through memory BIOs over a
// TCP stream) and a unix-socket stream (LMTP) are further kinds behind the same interface.
// Runs on its loop's thread only.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

#include "mta/common/tls_info.hpp"

namespace relayq::mta::net {

// What a stream tells its user. Every call comes from the loop thread; none comes after
// stream_closed().
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  // An outbound connect finished: status 0, or a negative libuv error code.
  virtual void stream_connected(int status) { (void)status; }
  // Bytes arrived. They are valid during the call only.
  virtual void stream_read(std::string_view bytes) = 0;
  // Every byte of one write() has been handed to the kernel. May come from inside write(),
  // when the socket took them at once.
  virtual void stream_written() {}
  // A TLS handshake on this stream completed: what follows is encrypted. (A handshake that
  // fails ends the stream, stream_ended saying why.)
  virtual void stream_secured(const TlsInfo& info) { (void)info; }
  // The peer closed (`error` empty), or a read or write failed (`error` says how). Comes once;
  // reading stops, and the user closes the stream.
  virtual void stream_ended(std::string_view error) = 0;
  // The stream's resources are released: the user may now forget it (and destroy itself).
  virtual void stream_closed() = 0;
};

// Owned by its user until close(). After close() the stream frees itself once its loop has
// let go of it, and tells stream_closed() last.
class Stream {
 public:
  virtual ~Stream() = default;

  // Sends every later event to `events` instead: a stream that wraps this one (TLS) takes
  // them over.
  virtual void set_events(StreamEvents& events) = 0;

  // Reading is off at first, and while the user cannot take more input (a message is being
  // stored, say).
  virtual void start_reading() = 0;
  virtual void stop_reading() = 0;
  // Queues bytes in order; most writes go out at once, without a copy. A failed write ends
  // the stream (stream_ended).
  virtual void write(std::string bytes) = 0;
  // Closes once every queued write has gone out (or failed).
  virtual void close_after_writes() = 0;
  // Closes now; queued writes are dropped.
  virtual void close() = 0;
  // The address of the other end, when the stream is connected to one.
  virtual std::optional<sockaddr_storage> peer() const = 0;
  // The address of this end, when the stream is connected (Dovecot is told it, as lip).
  virtual std::optional<sockaddr_storage> local() const = 0;
};

}  // namespace relayq::mta::net
