// The HAProxy PROXY protocol header (versions 1 and 2) that a trusted load balancer sends
// before the SMTP dialogue, naming the real client. I/O-free: bytes in, a verdict out; the
// connection that reads it runs on its loop's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"

namespace relayq::mta {

struct ProxyHeader {
  // The client the balancer speaks for; none for a LOCAL (v2) or UNKNOWN (v1) header, such as
  // a health check, when the connection's own address stands.
  std::optional<dns::IpAddress> source;
  std::uint16_t source_port = 0;
};

struct ProxyParse {
  enum class Status { need_more, done, invalid } status = Status::need_more;
  std::size_t consumed = 0;  // the header's bytes, when done: the rest is SMTP
  ProxyHeader header;
  std::string error;  // why it is invalid
};

// Looks for a whole header at the start of `input` (all bytes received so far).
ProxyParse parse_proxy_header(std::string_view input);

}  // namespace relayq::mta
