// Reading the extensions a server announces in its EHLO reply.
#pragma once

#include <string_view>

#include "mta/smtp/client_session.hpp"

namespace relayq::mta {

// `text` is a whole 250 reply, lines joined by "\n"; its first line is the server's greeting.
ServerExtensions parse_ehlo_reply(std::string_view text);

}  // namespace relayq::mta
