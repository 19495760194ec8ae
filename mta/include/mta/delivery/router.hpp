// Which destination a recipient domain goes to: its configured route (SMTP or LMTP), else the
// smarthost, else the domain's MX hosts. Recipients with the same destination share connections.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/smtp/client_session.hpp"

namespace relayq::mta {

struct Route {
  bool mx = true;  // resolve `name` as a mail domain (MX); else `name` is a host to connect to
  // The destination's identity: "mx:example.org", "host:10.0.0.1:25", "lmtp:127.0.0.1:24" or
  // "lmtp:unix:/run/dovecot/lmtp".
  std::string key;
  std::string name;  // the domain (mx) or host name / IP literal (host)
  std::uint16_t port = 25;
  bool lmtp = false;      // speak LMTP (RFC 2033) to the next hop
  std::string unix_path;  // LMTP over this unix socket instead of `name` and `port`
  TlsPolicy tls = TlsPolicy::opportunistic;  // [delivery] tls, or the route's own
  // Verify the next hop's certificate (chain to this CA file, name = the host connected to);
  // only with tls = required: an opportunistic hop whose certificate fails gets no better
  // than plaintext anyway. Empty = encryption without verification.
  std::string tls_ca;
  // The recipient domain's [shaping] entry, when it has one (its mail then has a lane, and on
  // a route shared with other domains a destination, of its own); else empty.
  std::string shaping;
};

TlsPolicy parse_tls_policy(std::string_view text);

class Router {
 public:
  explicit Router(const Config& config);
  Route route_for(const std::string& domain) const;

 private:
  Route next_hop_for(const std::string& domain) const;

  std::optional<Route> smarthost_;
  std::map<std::string, Route, std::less<>> routes_;
  std::vector<std::string> shaped_;  // domains with a [shaping] entry
  std::uint16_t mx_port_ = 25;
  Route mx_;  // the TLS settings of MX destinations
};

}  // namespace relayq::mta
