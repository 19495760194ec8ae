// Destinations of recipient domains: [routes."domain"] (SMTP or LMTP), then the smarthost,
// then MX.
#include "mta/delivery/router.hpp"

#include <algorithm>

#include "dns/domain_name.hpp"

namespace relayq::mta {

namespace {

void set_tls(Route& route, const std::string& policy, const std::string& ca) {
  route.tls = parse_tls_policy(policy);
  if (route.tls == TlsPolicy::required) route.tls_ca = ca;
}

Route host_route(const std::string& nexthop) {
  const Nexthop target = parse_nexthop(nexthop);
  Route route;
  route.mx = false;
  route.key = target.lmtp ? nexthop : "host:" + nexthop;
  route.name = target.unix_path.empty() ? target.address.host : "localhost";
  route.port = target.address.port;
  route.lmtp = target.lmtp;
  route.unix_path = target.unix_path;
  return route;
}

}  // namespace

TlsPolicy parse_tls_policy(std::string_view text) {
  if (text == "off") return TlsPolicy::off;
  if (text == "required") return TlsPolicy::required;
  return TlsPolicy::opportunistic;  // the config reader allows nothing else
}

Router::Router(const Config& config) : mx_port_(config.delivery.port) {
  const auto& delivery = config.delivery;
  if (!delivery.smarthost.empty()) {
    smarthost_ = host_route(delivery.smarthost);
    set_tls(*smarthost_, delivery.tls, delivery.tls_ca);
  }
  for (const auto& [domain, route] : config.routes) {
    Route& out = routes_.emplace(domain, host_route(route.nexthop)).first->second;
    // A unix socket never gets TLS (the config reader refuses asking for it).
    set_tls(out,
            !out.unix_path.empty() ? "off"
            : route.tls.empty()    ? delivery.tls
                                   : route.tls,
            route.tls_ca.empty() ? delivery.tls_ca : route.tls_ca);
    // Routes to one host with different TLS demands must not share connections.
    if (!route.tls.empty() || !route.tls_ca.empty())
      out.key += " tls=" + std::string(to_string(out.tls)) + " ca=" + out.tls_ca;
  }
  for (const auto& [name, shaping] : config.shaping)
    if (!name.starts_with("mx:")) shaped_.push_back(name);
  mx_.tls = parse_tls_policy(delivery.tls);
  if (mx_.tls == TlsPolicy::required) mx_.tls_ca = delivery.tls_ca;
}

Route Router::route_for(const std::string& domain) const {
  Route route = next_hop_for(domain);
  const auto shaped = std::find(shaped_.begin(), shaped_.end(), dns::lower_case(domain));
  if (shaped != shaped_.end()) {
    route.shaping = *shaped;
    if (!route.mx) route.key += " shaping=" + route.shaping;
  }
  return route;
}

Route Router::next_hop_for(const std::string& domain) const {
  // Postfix's order: the domain's own route, then the smarthost, then MX. "Everything to the
  // provider's smarthost, our own domain to our mailbox server" needs it.
  if (auto it = routes_.find(domain); it != routes_.end()) return it->second;
  if (smarthost_) return *smarthost_;
  Route route = mx_;
  route.key = "mx:" + domain;
  route.name = domain;
  route.port = mx_port_;
  return route;
}

}  // namespace relayq::mta
