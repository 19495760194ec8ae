// OpenSSL contexts: the server's (certificate and key, for STARTTLS and smtps) and the client's
// (for STARTTLS to next hops, optionally verifying against a CA file). Made on the main thread
// at start and at reload; then shared read-only by every loop (an SSL_CTX is thread-safe once
// set up). A reload makes a new context; connections keep the one they started with.
#pragma once

#include <openssl/ssl.h>

#include <deque>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace relayq::mta::net {

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TlsVersion { tls1_2, tls1_3 };

// "TLSv1.2" | "TLSv1.3"; nullopt-like: throws std::invalid_argument otherwise.
TlsVersion parse_tls_version(std::string_view text);

// The most recent OpenSSL errors of this thread as one line (and the queue cleared).
std::string openssl_errors();

class TlsContext {
 public:
  struct ServerOptions {
    std::string cert;  // PEM chain
    std::string key;   // PEM private key
    TlsVersion min_version = TlsVersion::tls1_2;
    std::string ciphers;  // TLS 1.2 cipher list; empty = OpenSSL's defaults
  };
  struct ClientOptions {
    TlsVersion min_version = TlsVersion::tls1_2;
    std::string ca_file;  // verify the next hop's certificate against it; empty = no verification
  };

  // Throw TlsError saying which file failed and why.
  static std::shared_ptr<const TlsContext> server(const ServerOptions& options);
  static std::shared_ptr<const TlsContext> client(const ClientOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  bool verifies() const { return verifies_; }

 private:
  TlsContext(SSL_CTX* ctx, bool verifies) : ctx_(ctx), verifies_(verifies) {}
  SSL_CTX* ctx_;
  bool verifies_;
};

}  // namespace relayq::mta::net

namespace relayq::mta::net {

// Client sessions to resume, by next hop ("host:port"), so that a reused destination skips the
// full handshake. One per loop (loop thread only); bounded, the oldest entry goes first.
class TlsSessionCache {
 public:
  static constexpr std::size_t kMaxEntries = 1024;

  TlsSessionCache() = default;
  ~TlsSessionCache();
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;

  // Borrowed; null when there is none.
  SSL_SESSION* find(const std::string& key) const;
  // Takes ownership of `session` (replacing an older one for `key`).
  void store(const std::string& key, SSL_SESSION* session);
  std::size_t size() const { return order_.size(); }

 private:
  std::map<std::string, SSL_SESSION*> sessions_;
  std::deque<std::string> order_;  // keys, oldest first
};

// Where a client context's new-session callback puts the session a handshake (or a later
// TLS 1.3 ticket) gave: each client SSL carries one in its ex_data.
struct TlsSessionSlot {
  TlsSessionCache* cache = nullptr;
  std::string key;
};
// The ex_data index of a client SSL's TlsSessionSlot.
int tls_session_slot_index();

}  // namespace relayq::mta::net
