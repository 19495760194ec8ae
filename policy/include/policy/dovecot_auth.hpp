// [auth] dovecot: submission passwords checked by Dovecot's auth service, so that the mailbox
// server's users are the submission users. check() talks to the service over a unix socket or
// TCP with blocking I/O under deadlines: it runs on libuv's worker pool, as the users file's
// hashes do, and a hung Dovecot costs a worker a few seconds at most. Made on the config thread
// (start, reload), then shared read-only by the workers.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "dns/ip_address.hpp"
#include "policy/password_checker.hpp"

namespace relayq::policy {

// Where Dovecot's auth service listens: a unix_listener's socket or an inet_listener's address.
struct DovecotEndpoint {
  std::string socket_path;  // "unix:PATH"; empty for TCP
  dns::IpAddress address;   // "ip:port" or "[ipv6]:port"
  std::uint16_t port = 0;

  // As the config writes it: "unix:/run/dovecot/auth-client", "127.0.0.1:12345", "[::1]:12345".
  std::string to_string() const;
};

class DovecotAuth final : public PasswordChecker {
 public:
  struct Timeouts {
    // Connecting and Dovecot's handshake, which it sends at once.
    std::chrono::milliseconds connect{3000};
    // The verdict: a failure comes after Dovecot's auth_failure_delay (2 s by default), later
    // still behind its penalty for an address that keeps failing, or a slow user database.
    std::chrono::milliseconds reply{10000};
  };

  explicit DovecotAuth(DovecotEndpoint endpoint) : DovecotAuth(std::move(endpoint), Timeouts()) {}
  DovecotAuth(DovecotEndpoint endpoint, Timeouts timeouts)
      : endpoint_(std::move(endpoint)), timeouts_(timeouts) {}

  // Accepted on Dovecot's OK, refused on its FAIL (and for a user or password holding NUL,
  // which PLAIN cannot carry); unavailable, with the reason in `detail`, when Dovecot cannot be
  // reached, does not answer in time, says it failed temporarily or speaks nonsense.
  PasswordCheck check(std::string_view user, std::string_view password,
                      const PasswordClient& client) const override;

 private:
  DovecotEndpoint endpoint_;
  Timeouts timeouts_;
};

}  // namespace relayq::policy
