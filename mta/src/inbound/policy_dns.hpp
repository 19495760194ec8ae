// The lookups of the policy checks (SPF, reverse DNS, DKIM keys, DMARC records) over the loop's
// c-ares resolver. Loop thread only.
#pragma once

#include <functional>
#include <string>

#include "dns/resolver.hpp"
#include "policy/spf.hpp"

namespace relayq::mta {

// The resolver is looked up at each query, not kept: a reload may replace the loop's resolver
// while a check is under way (its pending lookups then answer "temporary").
using ResolverSource = std::function<dns::Resolver&()>;

class PolicyDns : public policy::SpfDns {
 public:
  explicit PolicyDns(ResolverSource resolver) : resolver_(std::move(resolver)) {}

  void txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) override;
  void a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override;
  void aaaa(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override;
  void mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) override;
  void ptr(const dns::IpAddress& address,
           std::function<void(const dns::NameAnswer&)> done) override;

 private:
  ResolverSource resolver_;
};

}  // namespace relayq::mta
