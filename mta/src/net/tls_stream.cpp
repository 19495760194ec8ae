// net::Stream with TLS inside, over another stream: ciphertext the inner stream reads goes into
// OpenSSL's input BIO, what OpenSSL writes to its output BIO goes out through the inner stream.
// The handshake advances as bytes arrive, so nothing here ever waits. Loop thread only.
#include "mta/net/tls_stream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <utility>

namespace relayq::mta::net {

namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

}  // namespace

TlsStream::TlsStream(Stream* inner, std::shared_ptr<const TlsContext> context, StreamEvents& events)
    : inner_(inner), context_(std::move(context)), events_(&events) {
  ssl_ = SSL_new(context_->get());
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  // At end of input a memory BIO says "retry", not "end of file": more may come.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);
  inner_->set_events(*this);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);  // frees both BIOs
}

TlsStream* TlsStream::server(Stream* inner, std::shared_ptr<const TlsContext> context,
                             StreamEvents& events) {
  auto* stream = new TlsStream(inner, std::move(context), events);
  SSL_set_accept_state(stream->ssl_);  // the client speaks first
  return stream;
}

TlsStream* TlsStream::client(Stream* inner, std::shared_ptr<const TlsContext> context,
                             const ClientOptions& options, StreamEvents& events) {
  auto* stream = new TlsStream(inner, std::move(context), events);
  SSL* ssl = stream->ssl_;
  SSL_set_connect_state(ssl);
  if (!options.host.empty() && !is_ip_literal(options.host)) {
    SSL_set_tlsext_host_name(ssl, options.host.c_str());
    if (stream->context_->verifies()) SSL_set1_host(ssl, options.host.c_str());
  } else if (!options.host.empty() && stream->context_->verifies()) {
    // A route to an IP literal: the certificate must name that address.
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options.host.c_str());
  }
  if (options.cache != nullptr) {
    stream->session_slot_ = {options.cache, options.cache_key};
    SSL_set_ex_data(ssl, tls_session_slot_index(), &stream->session_slot_);
    if (SSL_SESSION* session = options.cache->find(options.cache_key))
      SSL_set_session(ssl, session);
  }
  return stream;
}

void TlsStream::begin() {
  handshake();  // the ClientHello
}

void TlsStream::handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
  if (rc != 1 && error != SSL_ERROR_WANT_READ) {
    std::string reason = error == SSL_ERROR_SSL ? openssl_errors() : "connection closed";
    // Without verification OpenSSL still notes what it thinks of the chain: not the cause.
    if (const long verify = SSL_get_verify_result(ssl_);
        context_->verifies() && verify != X509_V_OK)
      reason = std::string("certificate: ") + X509_verify_cert_error_string(verify);
    flush(0);  // the alert that tells the peer why
    return fail("TLS handshake failed: " + reason);
  }
  flush(0);
  // The flush may have failed, and the user closed us meanwhile.
  if (rc != 1 || closing_ || ended_) return;
  secured_ = true;
  // The early writes first: what the user writes when told the stream is secure follows them.
  if (!early_writes_.empty())
    encrypt(std::exchange(early_writes_, std::string()), std::exchange(early_write_count_, 0));
  if (!closing_ && !ended_) events_->stream_secured(describe());
}

TlsInfo TlsStream::describe() const {
  TlsInfo info;
  info.version = SSL_get_version(ssl_);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
    info.cipher = SSL_CIPHER_get_name(cipher);
    info.bits = SSL_CIPHER_get_bits(cipher, nullptr);
  }
  info.verified = context_->verifies() && SSL_get_verify_result(ssl_) == X509_V_OK;
  info.resumed = SSL_session_reused(ssl_) == 1;
  return info;
}

void TlsStream::stream_read(std::string_view bytes) {
  if (closing_ || ended_) return;
  BIO_write(network_in_, bytes.data(), static_cast<int>(bytes.size()));
  if (!secured_) handshake();
  if (secured_ && !closing_ && !ended_) read_plaintext();
}

// Everything the records received so far hold, handed on in one stream_read() as the TCP
// stream does: the user consumes all of it (or buffers it) in that one call.
void TlsStream::read_plaintext() {
  static thread_local std::string plaintext;
  plaintext.clear();
  bool peer_closed = false;
  for (;;) {
    constexpr std::size_t kChunk = 16 * 1024;
    const std::size_t used = plaintext.size();
    plaintext.resize(used + kChunk);
    ERR_clear_error();
    const int n = SSL_read(ssl_, plaintext.data() + used, static_cast<int>(kChunk));
    plaintext.resize(used + static_cast<std::size_t>(n > 0 ? n : 0));
    if (n > 0) continue;
    const int error = SSL_get_error(ssl_, n);
    if (error == SSL_ERROR_WANT_READ) break;
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed = true;  // close_notify
      break;
    }
    flush(0);
    return fail("TLS: " + (error == SSL_ERROR_SSL ? openssl_errors() : "connection closed"));
  }
  flush(0);  // TLS 1.3 key updates and the like answer at once
  if (closing_ || ended_) return;
  if (!plaintext.empty()) events_->stream_read(plaintext);
  if (peer_closed && !closing_ && !ended_) {
    ended_ = true;
    events_->stream_ended({});
  }
}

void TlsStream::write(std::string bytes) {
  if (closing_ || ended_ || bytes.empty()) return;
  if (!secured_) {
    early_writes_ += bytes;
    ++early_write_count_;
    return;
  }
  encrypt(bytes, 1);
}

void TlsStream::encrypt(const std::string& plaintext, std::uint32_t user_writes) {
  ERR_clear_error();
  // A memory BIO takes everything: one SSL_write writes all of it.
  if (SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size())) <= 0)
    return fail("TLS: " + openssl_errors());
  flush(user_writes);
}

// Sends whatever OpenSSL has written; the inner write's completion completes `user_writes`
// of our users' writes.
void TlsStream::flush(std::uint32_t user_writes) {
  const std::size_t pending = BIO_ctrl_pending(network_out_);
  if (pending == 0) return;
  std::string ciphertext(pending, '\0');
  BIO_read(network_out_, ciphertext.data(), static_cast<int>(pending));
  inner_writes_.push_back(user_writes);
  inner_->write(std::move(ciphertext));
}

void TlsStream::stream_written() {
  if (inner_writes_.empty()) return;
  const std::uint32_t completed = inner_writes_.front();
  inner_writes_.pop_front();
  for (std::uint32_t i = 0; i < completed && !closing_ && !ended_; ++i) events_->stream_written();
}

void TlsStream::fail(std::string reason) {
  if (ended_) return;
  ended_ = true;
  inner_->stop_reading();
  events_->stream_ended(reason);
}

void TlsStream::stream_ended(std::string_view error) {
  if (closing_ || ended_) return;
  ended_ = true;
  if (!secured_) {
    events_->stream_ended("TLS handshake failed: " +
                          (error.empty() ? std::string("connection closed") : std::string(error)));
    return;
  }
  events_->stream_ended(error);
}

// A polite end: close_notify, then the inner stream closes once everything is out. Before the
// handshake completes there is no one to write to yet: the stream closes at once.
void TlsStream::close_after_writes() {
  if (closing_) return;
  if (secured_ && !ended_) {
    SSL_shutdown(ssl_);
    flush(0);
  }
  closing_ = true;
  inner_->close_after_writes();
}

void TlsStream::close() {
  closing_ = true;
  inner_->close();
}

void TlsStream::stream_closed() {
  StreamEvents* events = events_;
  delete this;
  events->stream_closed();
}

}  // namespace relayq::mta::net
