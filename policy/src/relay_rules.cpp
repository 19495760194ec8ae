// RelayRules: which clients may relay, and which recipient domains anyone may send to.
#include "policy/relay_rules.hpp"

#include <algorithm>
#include <utility>

#include "dns/domain_name.hpp"

namespace relayq::policy {

RelayRules::RelayRules(std::vector<Cidr> networks, std::vector<std::string> domains,
                       bool allow_untrusted_routing)
    : networks_(std::move(networks)), allow_untrusted_routing_(allow_untrusted_routing) {
  domains_.reserve(domains.size());
  for (const auto& domain : domains) domains_.push_back(dns::lower_case(domain));
}

bool RelayRules::may_send(const IpAddress& client, bool authenticated,
                          std::string_view recipient_domain) const {
  return authenticated || is_trusted_network(client) || is_accepted_domain(recipient_domain);
}

bool RelayRules::may_route(const IpAddress& client, bool authenticated,
                           std::string_view local_part) const {
  if (allow_untrusted_routing_ || authenticated || is_trusted_network(client)) return true;
  return local_part.find_first_of("%!@") == std::string_view::npos;
}

bool RelayRules::is_trusted_network(const IpAddress& client) const {
  return std::any_of(networks_.begin(), networks_.end(),
                     [&](const Cidr& network) { return network.contains(client); });
}

bool RelayRules::is_accepted_domain(std::string_view domain) const {
  return std::find(domains_.begin(), domains_.end(), dns::lower_case(domain)) != domains_.end();
}

}  // namespace relayq::policy
