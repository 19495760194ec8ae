// Relay rights: who may send to which recipient domains (the [relay] config section).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dns/ip_address.hpp"

namespace relayq::policy {

using dns::Cidr;
using dns::IpAddress;

class RelayRules {
 public:
  RelayRules() = default;
  RelayRules(std::vector<Cidr> networks, std::vector<std::string> domains);

  // A client in `networks` (or an authenticated one) may send to any domain; anyone may send
  // to a domain listed in `domains` (compared case-insensitively).
  bool may_send(const IpAddress& client, bool authenticated,
                std::string_view recipient_domain) const;

  bool is_trusted_network(const IpAddress& client) const;
  bool is_accepted_domain(std::string_view domain) const;

 private:
  std::vector<Cidr> networks_;
  std::vector<std::string> domains_;  // lower-case
};

}  // namespace relayq::policy
