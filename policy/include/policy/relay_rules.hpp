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
  RelayRules(std::vector<Cidr> networks, std::vector<std::string> domains,
             bool allow_untrusted_routing = false);

  // A client in `networks` (or an authenticated one) may send to any domain; anyone may send
  // to a domain listed in `domains` (compared case-insensitively).
  bool may_send(const IpAddress& client, bool authenticated,
                std::string_view recipient_domain) const;

  // Source routing in a recipient's local part ('%', '!', or a quoted '@':
  // "user%other.test@local.test") is for clients with relay rights only, unless the site allows
  // it from anyone: a host behind relayq that honours it would make relayq an open relay.
  bool may_route(const IpAddress& client, bool authenticated, std::string_view local_part) const;

  bool is_trusted_network(const IpAddress& client) const;
  bool is_accepted_domain(std::string_view domain) const;

 private:
  std::vector<Cidr> networks_;
  std::vector<std::string> domains_;  // lower-case
  bool allow_untrusted_routing_ = false;
};

}  // namespace relayq::policy
