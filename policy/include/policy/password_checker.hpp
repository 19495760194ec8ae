// How a submission user's password is checked: the one interface behind [auth] users_file
// (UsersFile, a crypt(3) hash) and [auth] dovecot (DovecotAuth, Dovecot's auth service), so the
// connection runs either without knowing which. check() blocks (a slow hash, or a round trip to
// Dovecot): callers run it on worker threads, off the event loop. Implementations are immutable
// once made, so any number of workers may check at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"

namespace relayq::policy {

enum class PasswordVerdict {
  accepted,
  refused,      // a wrong password, an unknown or disabled user
  unavailable,  // not checked: the service that checks is down, timed out or spoke nonsense
};

struct PasswordCheck {
  PasswordVerdict verdict = PasswordVerdict::refused;
  std::string detail;  // why it was unavailable, for the log; never holds the password
};

// Where the password came from: Dovecot logs the addresses and keys its failure penalty on them.
struct PasswordClient {
  dns::IpAddress address;               // the SMTP client (the one a PROXY header names)
  std::optional<dns::IpAddress> local;  // the address it connected to, when known
};

class PasswordChecker {
 public:
  virtual ~PasswordChecker() = default;
  virtual PasswordCheck check(std::string_view user, std::string_view password,
                              const PasswordClient& client) const = 0;
};

}  // namespace relayq::policy
