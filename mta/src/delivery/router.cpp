// Destinations of recipient domains: smarthost, then [routes."domain"], then MX.
#include "mta/delivery/router.hpp"

namespace relayq::mta {

namespace {

Route host_route(const std::string& host_port) {
  const HostPort target = parse_host_port(host_port);
  return {false, "host:" + host_port, target.host, target.port};
}

}  // namespace

Router::Router(const Config& config) : mx_port_(config.delivery.port) {
  if (!config.delivery.smarthost.empty()) smarthost_ = host_route(config.delivery.smarthost);
  for (const auto& [domain, route] : config.routes)
    routes_.emplace(domain, host_route(route.nexthop));
}

Route Router::route_for(const std::string& domain) const {
  if (smarthost_) return *smarthost_;
  if (auto it = routes_.find(domain); it != routes_.end()) return it->second;
  return {true, "mx:" + domain, domain, mx_port_};
}

}  // namespace relayq::mta
