// SMTP envelope paths: the argument of MAIL FROM / RCPT TO with its ESMTP parameters.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace relayq::mta {

// One ESMTP parameter, "KEYWORD" or "KEYWORD=value" (RFC 5321 4.1.2).
struct EsmtpParam {
  std::string_view keyword;
  std::string_view value;
  bool has_value = false;
};

enum class PathStatus {
  ok,
  bad_syntax,  // no "FROM:"/"TO:" keyword, or a malformed parameter list
  bad_path,    // the <...> path itself is malformed
  no_domain,   // a well-formed local part without "@domain"
};

struct PathArgument {
  PathStatus status = PathStatus::ok;
  std::string mailbox;             // "local@domain" as written, source route dropped; "" for <>
  std::string domain;              // the domain or address literal of the mailbox
  bool non_ascii = false;          // UTF-8 in the mailbox: needs SMTPUTF8 (RFC 6531)
  std::vector<EsmtpParam> params;  // views into the parsed argument
};

// Parses "FROM:<path> params" (keyword "FROM") or "TO:<path> params" (keyword "TO"), keyword
// case-insensitive. The null path <> is accepted only when `allow_null`.
PathArgument parse_path_argument(std::string_view argument, std::string_view keyword,
                                 bool allow_null);

}  // namespace relayq::mta
