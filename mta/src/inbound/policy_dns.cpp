// The policy checks' lookups, each handed to the loop's current resolver. Loop thread only.
#include "inbound/policy_dns.hpp"

namespace relayq::mta {

void PolicyDns::txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) {
  resolver_().txt(name, std::move(done));
}

void PolicyDns::a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) {
  resolver_().a(name, std::move(done));
}

void PolicyDns::aaaa(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) {
  resolver_().aaaa(name, std::move(done));
}

void PolicyDns::mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) {
  resolver_().mx(name, std::move(done));
}

void PolicyDns::ptr(const dns::IpAddress& address,
                    std::function<void(const dns::NameAnswer&)> done) {
  resolver_().ptr(address.to_string(), std::move(done));
}

}  // namespace relayq::mta
