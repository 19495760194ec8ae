// OpenSSL contexts for both directions and the client session cache. Contexts are made on the
// main thread (start, reload) and then only read; the cache lives on one loop thread.
#include "mta/net/tls_context.hpp"

#include <openssl/err.h>

namespace relayq::mta::net {

namespace {

int min_proto(TlsVersion version) {
  return version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// The index of TlsSessionSlot in a client SSL's ex_data, registered once.
int slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// A client handshake (or a TLS 1.3 ticket after it) produced a session worth resuming.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<TlsSessionSlot*>(SSL_get_ex_data(ssl, slot_index()));
  if (slot == nullptr || slot->cache == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  // A copy: OpenSSL marks the connection's own session unresumable when the connection ends
  // without close_notify, as a next hop that says 421 and hangs up does.
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->cache->store(slot->key, copy);
  return 0;  // the connection keeps its own
}

// Settings both directions share: the protocol floor, no renegotiation (a cheap way for a
// client to make the server do expensive work), no compression (CRIME), and buffers released
// while a connection is idle (most of an MTA's connections are).
void common_setup(SSL_CTX* ctx, TlsVersion min_version) {
  SSL_CTX_set_min_proto_version(ctx, min_proto(min_version));
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

TlsVersion parse_tls_version(std::string_view text) {
  if (text == "TLSv1.2") return TlsVersion::tls1_2;
  if (text == "TLSv1.3") return TlsVersion::tls1_3;
  throw std::invalid_argument("must be \"TLSv1.2\" or \"TLSv1.3\"");
}

std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown error" : text;
}

std::shared_ptr<const TlsContext> TlsContext::server(const ServerOptions& options) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) throw TlsError("TLS: " + openssl_errors());
  std::shared_ptr<const TlsContext> context(new TlsContext(ctx, false));
  common_setup(ctx, options.min_version);
  // The server picks among the client's offers (its own order is the secure one).
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!options.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str()) != 1)
    throw TlsError("tls.ciphers: " + openssl_errors());
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert.c_str()) != 1)
    throw TlsError("tls.cert " + options.cert + ": " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw TlsError("tls.key " + options.key + ": " + openssl_errors());
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw TlsError("tls.key " + options.key + " does not match tls.cert: " + openssl_errors());
  return context;
}

std::shared_ptr<const TlsContext> TlsContext::client(const ClientOptions& options) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) throw TlsError("TLS: " + openssl_errors());
  const bool verifies = !options.ca_file.empty();
  std::shared_ptr<const TlsContext> context(new TlsContext(ctx, verifies));
  common_setup(ctx, options.min_version);
  // Sessions are kept per next hop by the loop's TlsSessionCache, not by OpenSSL.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &on_new_session);
  if (verifies) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1)
      throw TlsError("tls_ca " + options.ca_file + ": " + openssl_errors());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    // Opportunistic TLS (RFC 7435): encrypt even when the certificate proves nothing.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

int tls_session_slot_index() {
  return slot_index();
}

TlsSessionCache::~TlsSessionCache() {
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
}

SSL_SESSION* TlsSessionCache::find(const std::string& key) const {
  const auto it = sessions_.find(key);
  return it == sessions_.end() ? nullptr : it->second;
}

void TlsSessionCache::store(const std::string& key, SSL_SESSION* session) {
  auto [it, inserted] = sessions_.try_emplace(key, session);
  if (!inserted) {
    SSL_SESSION_free(it->second);
    it->second = session;
    return;
  }
  order_.push_back(key);
  if (order_.size() > kMaxEntries) {
    const auto oldest = sessions_.find(order_.front());
    SSL_SESSION_free(oldest->second);
    sessions_.erase(oldest);
    order_.pop_front();
  }
}

}  // namespace relayq::mta::net
