// The single-family lookups (A alone, AAAA alone) that SPF uses, against a real DNS server on
// loopback: each asks only its own type, reports NODATA when the name has only the other
// family, and shares the cache with addresses().
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "dns/resolver.hpp"
#include "support/resolver_harness.hpp"

using namespace relayq;
using namespace relayq::test;

namespace {

constexpr const char* zone = R"(
dual.test.      A     192.0.2.1
dual.test.      A     192.0.2.2
dual.test.      AAAA  2001:db8::1
v4only.test.    A     192.0.2.10
v6only.test.    AAAA  2001:DB8::10
alias.test.     CNAME dual.test.
)";

dns::AddressAnswer a(ResolverHarness& harness, const std::string& name) {
  return harness.wait<dns::AddressAnswer>([&](auto done) { harness.resolver.a(name, done); });
}

dns::AddressAnswer aaaa(ResolverHarness& harness, const std::string& name) {
  return harness.wait<dns::AddressAnswer>([&](auto done) { harness.resolver.aaaa(name, done); });
}

std::set<std::string> texts(const dns::AddressAnswer& answer) {
  std::set<std::string> result;
  for (const auto& address : answer.addresses) result.insert(address.to_string());
  return result;
}

}  // namespace

TEST_CASE("resolver a() asks for A records only", "[dns][spf]") {
  DnsFixture fixture(zone, {"servfail.test"});
  auto& harness = fixture.harness;
  const auto answer = a(harness, "Dual.TEST.");
  REQUIRE(answer.status == dns::Status::ok);
  CHECK(texts(answer) == std::set<std::string>{"192.0.2.1", "192.0.2.2"});
  CHECK(fixture.server.queries("dual.test", "A") == 1);
  CHECK(fixture.server.queries("dual.test", "AAAA") == 0);
  CHECK(a(harness, "v6only.test").status == dns::Status::nodata);
  CHECK(a(harness, "nowhere.test").status == dns::Status::nxdomain);
  CHECK(a(harness, "servfail.test").status == dns::Status::temporary);
  CHECK(texts(a(harness, "alias.test")) == std::set<std::string>{"192.0.2.1", "192.0.2.2"});
}

TEST_CASE("resolver aaaa() asks for AAAA records only", "[dns][spf]") {
  DnsFixture fixture(zone, {"servfail.test"});
  auto& harness = fixture.harness;
  const auto answer = aaaa(harness, "dual.test");
  REQUIRE(answer.status == dns::Status::ok);
  REQUIRE(answer.addresses.size() == 1);
  CHECK(answer.addresses[0].v6);
  CHECK(answer.addresses[0].to_string() == "2001:db8::1");
  CHECK(fixture.server.queries("dual.test", "A") == 0);
  CHECK(aaaa(harness, "v4only.test").status == dns::Status::nodata);
  CHECK(aaaa(harness, "nowhere.test").status == dns::Status::nxdomain);
  CHECK(aaaa(harness, "servfail.test").status == dns::Status::temporary);
}

TEST_CASE("resolver single-family answers share the cache with addresses()", "[dns][spf]") {
  DnsFixture fixture(zone);
  auto& harness = fixture.harness;
  REQUIRE(a(harness, "dual.test").status == dns::Status::ok);
  REQUIRE(aaaa(harness, "dual.test").status == dns::Status::ok);
  CHECK(harness.addresses("dual.test").addresses.size() == 3);
  CHECK(fixture.server.queries("dual.test", "A") == 1);
  CHECK(fixture.server.queries("dual.test", "AAAA") == 1);
}
