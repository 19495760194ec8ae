// net::Stream with TLS inside: OpenSSL through two memory BIOs over another stream (TCP), so
// that a handshake never blocks the loop and needs no thread. Made over a connected stream,
// for STARTTLS at the moment the 220 has been written, or at accept for smtps. Loop thread only.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "mta/net/stream.hpp"
#include "mta/net/tls_context.hpp"

namespace relayq::mta::net {

class TlsStream final : public Stream, private StreamEvents {
 public:
  struct ClientOptions {
    std::string host;  // SNI, and the name the certificate must match when the context verifies
    TlsSessionCache* cache = nullptr;  // sessions to resume and keep, by cache_key
    std::string cache_key;
  };

  // Both take over `inner` (its events come here now; it is closed with this stream); the
  // server waits for the ClientHello, the client sends it on begin(). stream_secured() or
  // stream_ended() follows. Writes made before the
  // handshake completes wait for it.
  static TlsStream* server(Stream* inner, std::shared_ptr<const TlsContext> context,
                           StreamEvents& events);
  static TlsStream* client(Stream* inner, std::shared_ptr<const TlsContext> context,
                           const ClientOptions& options, StreamEvents& events);
  // A client sends its ClientHello here, once its user holds the pointer: a write that fails
  // at once ends the stream from inside this call.
  void begin();
  // Bytes the inner stream read before TLS began, taken as the first ones of the TLS stream
  // (an smtps ClientHello that came in one read with a PROXY header). Like begin(), once the
  // user holds the pointer: a handshake that fails on them ends the stream from inside.
  void feed(std::string_view bytes) { stream_read(bytes); }

  void set_events(StreamEvents& events) override { events_ = &events; }
  void start_reading() override { inner_->start_reading(); }
  void stop_reading() override { inner_->stop_reading(); }
  void write(std::string bytes) override;
  // Before the handshake has completed, the early writes are dropped and the stream closes
  // at once: waiting for a peer that may never finish it would hold the connection open.
  void close_after_writes() override;
  void close() override;
  std::optional<sockaddr_storage> peer() const override { return inner_->peer(); }
  std::optional<sockaddr_storage> local() const override { return inner_->local(); }

 private:
  TlsStream(Stream* inner, std::shared_ptr<const TlsContext> context, StreamEvents& events);
  ~TlsStream() override;

  void handshake();
  void read_plaintext();
  void encrypt(const std::string& plaintext, std::uint32_t user_writes);
  void flush(std::uint32_t user_writes);
  void fail(std::string reason);
  TlsInfo describe() const;

  void stream_read(std::string_view bytes) override;
  void stream_written() override;
  void stream_ended(std::string_view error) override;
  void stream_closed() override;

  Stream* inner_;
  std::shared_ptr<const TlsContext> context_;  // outlives ssl_
  StreamEvents* events_;
  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // ciphertext from the peer, read by OpenSSL (owned by ssl_)
  BIO* network_out_ = nullptr;  // ciphertext OpenSSL wrote, for the inner stream (owned by ssl_)
  TlsSessionSlot session_slot_;
  std::string early_writes_;  // plaintext written before the handshake completed
  std::uint32_t early_write_count_ = 0;
  // For each inner write still in flight, how many of our users' writes it completes.
  std::deque<std::uint32_t> inner_writes_;
  bool secured_ = false;
  bool ended_ = false;
  bool closing_ = false;
};

}  // namespace relayq::mta::net
