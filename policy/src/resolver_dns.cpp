// The policy checks' lookups, each handed to the current resolver. The resolver's thread only.
#include "policy/resolver_dns.hpp"

namespace relayq::policy {

void ResolverDns::txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) {
  resolver_().txt(name, std::move(done));
}

void ResolverDns::a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) {
  resolver_().a(name, std::move(done));
}

void ResolverDns::aaaa(const std::string& name,
                       std::function<void(const dns::AddressAnswer&)> done) {
  resolver_().aaaa(name, std::move(done));
}

void ResolverDns::mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) {
  resolver_().mx(name, std::move(done));
}

void ResolverDns::ptr(const dns::IpAddress& address,
                      std::function<void(const dns::NameAnswer&)> done) {
  resolver_().ptr(address.to_string(), std::move(done));
}

}  // namespace relayq::policy
