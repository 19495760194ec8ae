// The Authentication-Results: header (RFC 8601) that tells the mail's readers what relayq's
// checks found: spf, dkim, dmarc and iprev, under our authserv-id. No I/O, no state.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relayq::mta {

// One method's result ("spf=pass smtp.mailfrom=a@example.com"), with an optional comment
// ("(mail.example.com)") for people reading it.
struct AuthResult {
  std::string method;  // spf | dkim | dmarc | iprev
  std::string result;  // pass | fail | softfail | neutral | none | temperror | permerror | ...
  std::string comment;
  std::vector<std::pair<std::string, std::string>> properties;  // "smtp.mailfrom" -> value
};

// "Authentication-Results: ID;\r\n\tm1=r1 p=v;\r\n\tm2=r2 ...\r\n", or "ID; none" without
// results (RFC 8601 2.2). Values that are not an RFC 8601 token or local@domain are quoted;
// comments are escaped.
std::string format_authentication_results(std::string_view authserv_id,
                                          const std::vector<AuthResult>& results);

}  // namespace relayq::mta
