// RelayRules: which clients may relay, and which recipient domains anyone may send to.
#include "policy/relay_rules.hpp"

#include <algorithm>
#include <utility>

namespace relayq::policy {

namespace {

// ASCII only: domains reach us in their A-label (punycode) form.
std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return result;
}

}  // namespace

RelayRules::RelayRules(std::vector<Cidr> networks, std::vector<std::string> domains)
    : networks_(std::move(networks)) {
  domains_.reserve(domains.size());
  for (const auto& domain : domains) domains_.push_back(lower(domain));
}

bool RelayRules::may_send(const IpAddress& client, bool authenticated,
                          std::string_view recipient_domain) const {
  return authenticated || is_trusted_network(client) || is_accepted_domain(recipient_domain);
}

bool RelayRules::is_trusted_network(const IpAddress& client) const {
  return std::any_of(networks_.begin(), networks_.end(),
                     [&](const Cidr& network) { return network.contains(client); });
}

bool RelayRules::is_accepted_domain(std::string_view domain) const {
  return std::find(domains_.begin(), domains_.end(), lower(domain)) != domains_.end();
}

}  // namespace relayq::policy
