// Base64 (RFC 4648, with padding, no line breaks) for what policy writes: DKIM's p= and b=,
// Dovecot's resp=. OpenSSL's encoder; any thread.
#pragma once

#include <string>
#include <string_view>

namespace relayq::policy {

std::string base64(std::string_view bytes);

}  // namespace relayq::policy
