// Next-hop selection (RFC 5321 section 5, RFC 7505): MX ordering and shuffling, then
// resolve_domain and resolve_host against a real DNS server on loopback.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "dns/nexthop.hpp"
#include "support/resolver_harness.hpp"

using namespace relayq;
using namespace relayq::test;

namespace {

constexpr const char* zone = R"(
multi.test.             MX    20 backup.multi.test.
multi.test.             MX    10 mx-a.multi.test.
multi.test.             MX    10 mx-b.multi.test.
multi.test.             MX    5  primary.multi.test.
primary.multi.test.     A     127.0.0.5
primary.multi.test.     AAAA  ::1
mx-a.multi.test.        A     127.0.0.6
mx-b.multi.test.        A     127.0.0.7
backup.multi.test.      A     127.0.0.8
implicit.test.          A     127.0.0.9
implicit.test.          AAAA  2001:db8::9
nullmx.test.            MX    0 .
broken.test.            MX    10 nowhere.broken.test.
broken.test.            MX    20 noaddr.broken.test.
broken.test.            MX    30 mx.broken.test.
noaddr.broken.test.     TXT   "a name without addresses"
mx.broken.test.         A     127.0.0.10
hostless.test.          MX    10 nowhere.hostless.test.
flaky.test.             MX    10 failing.flaky.test.
noaddr.test.            TXT   "neither MX nor addresses"
)";

struct Fixture : DnsFixture {
  Fixture() : DnsFixture(zone, {"servfail.test", "failing.flaky.test"}) {}
  std::mt19937 random{42};

  dns::NextHopResult domain(const std::string& name, std::uint16_t port = 2525) {
    return harness.wait<dns::NextHopResult>(
        [&](auto done) { dns::resolve_domain(harness.resolver, name, port, random, done); });
  }
  dns::NextHopResult host(const std::string& name, std::uint16_t port = 2525) {
    return harness.wait<dns::NextHopResult>(
        [&](auto done) { dns::resolve_host(harness.resolver, name, port, done); });
  }
};

std::vector<std::string> ips(const dns::NextHopResult& result) {
  std::vector<std::string> ips;
  for (const auto& hop : result.hops) ips.push_back(hop.address.to_string());
  return ips;
}

}  // namespace

TEST_CASE("order_mx sorts by preference", "[nexthop]") {
  std::mt19937 random(1);
  const auto ordered = dns::order_mx({{30, "c"}, {10, "a"}, {20, "b"}, {0, "first"}}, random);
  std::vector<std::string> hosts;
  for (const auto& record : ordered) hosts.push_back(record.host);
  CHECK(hosts == std::vector<std::string>{"first", "a", "b", "c"});
}

TEST_CASE("order_mx shuffles equal preferences across seeds", "[nexthop]") {
  std::map<std::string, int> first_among_equals;
  for (std::uint32_t seed = 0; seed < 300; ++seed) {
    std::mt19937 random(seed);
    const auto ordered =
        dns::order_mx({{10, "x"}, {10, "y"}, {10, "z"}, {5, "p"}, {20, "last"}}, random);
    REQUIRE(ordered.size() == 5);
    REQUIRE(ordered.front().host == "p");
    REQUIRE(ordered.back().host == "last");
    ++first_among_equals[ordered[1].host];
  }
  // Uniform would be 100 each; anything from 60 up shows a real shuffle.
  CHECK(first_among_equals.size() == 3);
  for (const auto& [host, count] : first_among_equals) CHECK(count >= 60);
}

TEST_CASE("resolve_domain orders MX hosts with their addresses", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("Multi.Test.");
  REQUIRE(result.status == dns::NextHopStatus::ok);
  REQUIRE(result.hops.size() == 5);
  // primary (5): IPv6 then IPv4; mx-a and mx-b (10) in either order; backup (20) last.
  CHECK(result.hops[0].host == "primary.multi.test");
  CHECK(result.hops[0].address.to_string() == "::1");
  CHECK(result.hops[0].address.v6);
  CHECK(result.hops[1].address.to_string() == "127.0.0.5");
  CHECK(result.hops[0].preference == 5);
  std::set<std::string> middle{result.hops[2].host, result.hops[3].host};
  CHECK(middle == std::set<std::string>{"mx-a.multi.test", "mx-b.multi.test"});
  CHECK(result.hops[2].preference == 10);
  CHECK(result.hops[4].host == "backup.multi.test");
  CHECK(result.hops[4].address.to_string() == "127.0.0.8");
  for (const auto& hop : result.hops) CHECK(hop.port == 2525);
}

TEST_CASE("resolve_domain varies the order of equal MX hosts", "[nexthop]") {
  Fixture fixture;
  std::set<std::string> seen_first;
  for (int i = 0; i < 40; ++i) seen_first.insert(fixture.domain("multi.test").hops[2].host);
  CHECK(seen_first.size() == 2);
  // The MX and address answers came from the cache after the first round.
  CHECK(fixture.server.queries("multi.test", "MX") == 1);
}

TEST_CASE("resolve_domain falls back to the implicit MX", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("implicit.test", 25);
  REQUIRE(result.status == dns::NextHopStatus::ok);
  CHECK(ips(result) == std::vector<std::string>{"2001:db8::9", "127.0.0.9"});
  CHECK(result.hops[0].host == "implicit.test");
  CHECK(result.hops[0].preference == 0);
  CHECK(result.hops[0].port == 25);
}

TEST_CASE("resolve_domain bounces a domain with neither MX nor address with 5.4.4", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("noaddr.test");
  CHECK(result.status == dns::NextHopStatus::bounce);
  CHECK(result.enhanced_code == "5.4.4");
}

TEST_CASE("resolve_domain bounces a null MX with 5.1.10", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("nullmx.test");
  CHECK(result.status == dns::NextHopStatus::bounce);
  CHECK(result.enhanced_code == "5.1.10");
  CHECK(result.hops.empty());
  CHECK_THAT(result.reason, Catch::Contains("null MX"));
}

TEST_CASE("resolve_domain bounces NXDOMAIN with 5.1.2", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("nowhere.test");
  CHECK(result.status == dns::NextHopStatus::bounce);
  CHECK(result.enhanced_code == "5.1.2");
  CHECK_THAT(result.reason, Catch::Contains("nowhere.test"));
}

TEST_CASE("resolve_domain defers on SERVFAIL with 4.4.3", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("servfail.test");
  CHECK(result.status == dns::NextHopStatus::temporary);
  CHECK(result.enhanced_code == "4.4.3");
}

TEST_CASE("resolve_domain skips MX hosts without an address", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("broken.test");
  REQUIRE(result.status == dns::NextHopStatus::ok);
  REQUIRE(result.hops.size() == 1);
  CHECK(result.hops[0].host == "mx.broken.test");
  CHECK(result.hops[0].address.to_string() == "127.0.0.10");
  CHECK(result.hops[0].preference == 30);
}

TEST_CASE("resolve_domain bounces when no MX host has an address with 5.4.4", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("hostless.test");
  CHECK(result.status == dns::NextHopStatus::bounce);
  CHECK(result.enhanced_code == "5.4.4");
}

TEST_CASE("resolve_domain defers when an MX host lookup fails temporarily", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.domain("flaky.test");
  CHECK(result.status == dns::NextHopStatus::temporary);
  CHECK(result.enhanced_code == "4.4.3");
}

TEST_CASE("resolve_domain uses an address literal as it is", "[nexthop]") {
  Fixture fixture;
  const auto v4 = fixture.domain("[127.0.0.1]");
  REQUIRE(v4.status == dns::NextHopStatus::ok);
  CHECK(ips(v4) == std::vector<std::string>{"127.0.0.1"});
  const auto v6 = fixture.domain("[IPv6:0:0:0:0:0:0:0:1]");
  REQUIRE(v6.status == dns::NextHopStatus::ok);
  CHECK(ips(v6) == std::vector<std::string>{"::1"});
  CHECK(v6.hops[0].address.v6);
  CHECK(fixture.domain("[not.an.ip]").status == dns::NextHopStatus::bounce);
}

TEST_CASE("resolve_host uses IP literals directly", "[nexthop]") {
  Fixture fixture;
  for (const std::string literal : {"127.0.0.2", "[127.0.0.2]"}) {
    const auto result = fixture.host(literal, 2601);
    REQUIRE(result.status == dns::NextHopStatus::ok);
    REQUIRE(result.hops.size() == 1);
    CHECK(result.hops[0].address.to_string() == "127.0.0.2");
    CHECK_FALSE(result.hops[0].address.v6);
    CHECK(result.hops[0].port == 2601);
  }
  for (const std::string literal : {"2001:DB8::1", "[IPv6:2001:db8::1]", "[2001:db8::1]"}) {
    const auto result = fixture.host(literal);
    REQUIRE(result.status == dns::NextHopStatus::ok);
    CHECK(ips(result) == std::vector<std::string>{"2001:db8::1"});
    CHECK(result.hops[0].address.v6);
  }
  CHECK(fixture.host("[IPv6:127.0.0.1]").status == dns::NextHopStatus::bounce);
  // None of them asked the DNS server.
  CHECK(fixture.server.queries("127.0.0.2", "A") == 0);
}

TEST_CASE("resolve_host resolves a name without MX lookup", "[nexthop]") {
  Fixture fixture;
  const auto result = fixture.host("implicit.test", 2602);
  REQUIRE(result.status == dns::NextHopStatus::ok);
  CHECK(ips(result) == std::vector<std::string>{"2001:db8::9", "127.0.0.9"});
  CHECK(result.hops[0].port == 2602);
  CHECK(fixture.server.queries("implicit.test", "MX") == 0);
}

TEST_CASE("resolve_host bounces a name without address and defers on failures", "[nexthop]") {
  Fixture fixture;
  const auto missing = fixture.host("nowhere.test");
  CHECK(missing.status == dns::NextHopStatus::bounce);
  CHECK(missing.enhanced_code == "5.4.4");
  const auto nodata = fixture.host("noaddr.test");
  CHECK(nodata.status == dns::NextHopStatus::bounce);
  CHECK(nodata.enhanced_code == "5.4.4");
  const auto failing = fixture.host("servfail.test");
  CHECK(failing.status == dns::NextHopStatus::temporary);
  CHECK(failing.enhanced_code == "4.4.3");
}
