// The lookups of the policy checks (SPF, reverse DNS, DKIM keys, DMARC records) over a c-ares
// resolver: the daemon's on each loop, `relayq check-dns`'s on its own. The resolver's thread
// only.
#pragma once

#include <functional>
#include <string>

#include "dns/resolver.hpp"
#include "policy/spf.hpp"

namespace relayq::policy {

// The resolver is looked up at each query, not kept: a reload may replace a loop's resolver
// while a check is under way (its pending lookups then answer "temporary").
using ResolverSource = std::function<dns::Resolver&()>;

class ResolverDns : public SpfDns {
 public:
  explicit ResolverDns(ResolverSource resolver) : resolver_(std::move(resolver)) {}

  void txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) override;
  void a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override;
  void aaaa(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override;
  void mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) override;
  void ptr(const dns::IpAddress& address,
           std::function<void(const dns::NameAnswer&)> done) override;

 private:
  ResolverSource resolver_;
};

}  // namespace relayq::policy
