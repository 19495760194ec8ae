// The submission users file ([auth] users_file): who may send mail with a password, and the
// check of a password against that user's crypt(3) hash. Loaded on the config thread (start and
// reload), then shared read-only: verify() and check() run on worker threads, off the event loop.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "policy/password_checker.hpp"

namespace relayq::policy {

// A users file that cannot be used; the message is "PATH:LINE: what" (or "PATH: cannot read: ...").
class UsersFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The [auth] users_file: "user:hash" lines of the users who may submit mail with a password.
class UsersFile final : public PasswordChecker {
 public:
  // Throws UsersFileError: unreadable file ("PATH: cannot read: <strerror>"), a line without ':',
  // an empty user, a duplicate user, or a hash that is not crypt(3) SHA-512 ("$6$...") or
  // yescrypt ("$y$..."): plain-text passwords and weaker schemes are refused with a message that
  // says how to make a hash. Blank lines and lines starting with '#' are skipped; trailing
  // whitespace / CR trimmed. Messages never quote a hash or a line, which may be a password.
  static std::shared_ptr<const UsersFile> load(const std::string& path);
  static std::shared_ptr<const UsersFile> parse(std::string_view text, const std::string& path);

  // Slow on purpose (crypt_r): callers run it off the event loop. True only when the user exists
  // (exact, case-sensitive name) and crypt_r(password, hash) equals the hash, compared in
  // constant time. An unknown user costs a hash all the same, so that timing does not tell which
  // users exist. A password containing NUL never verifies. Thread-safe.
  bool verify(std::string_view user, std::string_view password) const;
  // verify() as a PasswordChecker: accepted or refused, never unavailable; `client` is not used.
  PasswordCheck check(std::string_view user, std::string_view password,
                      const PasswordClient& client) const override;
  std::size_t size() const;

 private:
  UsersFile() = default;

  std::map<std::string, std::string, std::less<>> hashes_;  // user -> "$6$..." or "$y$..."
  // What an unknown user's password is hashed with: the setting (hash without its checksum) of
  // a listed user of the most common scheme, so that it costs the same as a real check.
  std::string dummy_setting_;
};

}  // namespace relayq::policy
