// Dovecot's auth client protocol (version 1, what the auth service's auth-client listeners
// speak; Dovecot's doc/wiki "Design.AuthProtocol"), as lines: the handshake we send, the
// server's handshake read, our AUTH request, and the server's verdict on it. Lines here have no
// LF. No I/O, no state beyond one handshake: DovecotAuth drives it over a socket on a worker
// thread; the unit tests drive it alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/password_checker.hpp"

namespace relayq::policy::dovecot {

// A field as Dovecot's str_append_tabescaped() wrote it, back to what it says: \001 escapes
// \001, TAB, CR and LF as "\0011", "\001t", "\001r" and "\001n".
std::string tab_unescape(std::string_view field);

// What we send on connecting, before the server's handshake arrives: "VERSION\t1\t2\n" and
// "CPID\t<pid>\n".
std::string client_handshake(std::uint32_t pid);

// The server's handshake: VERSION, MECH (one per mechanism), SPID, CUID, COOKIE, then DONE.
class ServerHandshake {
 public:
  enum class Status { more, done, failed };
  // One line, without its LF. `done` at DONE when the major version is 1 and PLAIN is offered;
  // `failed` otherwise (error() says why). Lines we have no use for are skipped, as the protocol
  // asks of unknown ones.
  Status read_line(std::string_view line);
  const std::string& error() const { return error_; }

 private:
  bool version_ = false;  // a VERSION line with major version 1 came
  bool plain_ = false;    // a MECH line offered PLAIN
  std::string error_;
};

// The AUTH request, with its LF: request `id`, mechanism PLAIN with the initial response
// "\0user\0password" in base64 (both SMTP mechanisms, PLAIN and LOGIN, end in a user and a
// password), service "smtp", the client's addresses. User and password go inside the base64
// only, as the last field, so nothing they hold (TAB, LF) can reach the line unescaped or add
// a field; neither may hold NUL, PLAIN's separator (the caller refuses those first). `secured`:
// relayq takes AUTH only over TLS or on a plaintext_auth listener, whose network the operator
// vouched for, which is what Dovecot's "secured" means (its disable_plaintext_auth allows it).
// `no-penalty`: relayq throttles failures by client address itself (AuthThrottle); Dovecot's
// penalty would delay every later answer to that address by up to 15 s more, each wait holding a
// worker thread.
std::string auth_request(std::uint32_t id, std::string_view user, std::string_view password,
                         const PasswordClient& client);

// The server's answer to request `id`: OK is accepted; FAIL is refused, or unavailable with
// code=temp_fail (Dovecot could not reach its user database); anything else (CONT, a line for
// another id, a command we do not know) is a protocol error, unavailable. `detail` says why it
// is unavailable, quoting Dovecot's reason= when it gave one.
PasswordCheck read_auth_reply(std::string_view line, std::uint32_t id);

}  // namespace relayq::policy::dovecot
