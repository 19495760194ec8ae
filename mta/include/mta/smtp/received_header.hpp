// The Received: trace header (RFC 5321 4.4) that starts every message the session queues.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"
#include "mta/common/tls_info.hpp"
#include "queue/message.hpp"

namespace relayq::mta {

struct ReceivedTrace {
  std::string_view helo;         // the HELO/EHLO argument
  dns::IpAddress client;         // the peer
  std::string_view hostname;     // ours
  std::string_view protocol;     // SMTP, ESMTP, ESMTPSA, UTF8SMTPS... (RFC 3848, RFC 6531)
  const TlsInfo* tls = nullptr;  // the TLS the message came over, if any
  queue::MessageId id = 0;
  std::string_view recipient;  // given in a "for" clause when it is the only one
  std::int64_t time_ms = 0;    // wall clock
};

// "Received: from helo ([ip])\r\n\t(using TLSv1.3 with cipher C (256 bits))\r\n\tby host
// (relayq) with ESMTPS id ID\r\n\tfor <r>; date\r\n", the TLS line only over TLS.
std::string format_received(const ReceivedTrace& trace);

}  // namespace relayq::mta
