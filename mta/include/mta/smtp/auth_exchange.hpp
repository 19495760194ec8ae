// The SASL side of SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms as a small
// state machine of base64 lines, ending in credentials for the host to check. No I/O, no state
// beyond one exchange; the session owns it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mta/smtp/replies.hpp"

namespace relayq::mta {

// What a client proved it knows; checked by the host, off the event loop.
struct Credentials {
  std::string user;
  std::string password;
};

// RFC 4648 base64 with padding, strictly: nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

class AuthExchange {
 public:
  // What the session does next: send a 334 challenge, hand the credentials on, or end the
  // exchange with a refusal.
  struct Step {
    enum class Kind { challenge, credentials, refused } kind = Kind::refused;
    std::string challenge;  // base64, for "334 {}"
    Credentials credentials;
    Reply refusal = Reply::auth_bad_base64;
  };

  // `mechanism` as the client wrote it; `initial_response` when the AUTH line carried one
  // ("=" standing for an empty one, RFC 4954 4). nullopt for a mechanism we do not offer.
  static std::optional<AuthExchange> start(std::string_view mechanism);
  Step begin(std::optional<std::string_view> initial_response);
  // One response line (without CRLF); "*" cancels.
  Step respond(std::string_view line);

 private:
  enum class Mechanism { plain, login };
  enum class Expect { plain_message, user, password };
  explicit AuthExchange(Mechanism mechanism) : mechanism_(mechanism) {}

  Step take(std::string_view decoded);

  Mechanism mechanism_;
  Expect expect_ = Expect::plain_message;
  std::string user_;  // LOGIN: the user name, until the password comes
};

// "PLAIN LOGIN": what EHLO announces.
inline constexpr std::string_view kAuthMechanisms = "PLAIN LOGIN";

}  // namespace relayq::mta
