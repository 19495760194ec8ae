// The c-ares resolver against a real DNS server on loopback: every record type, the status
// mapping, timeouts, the shared cache with its TTLs, coalescing and shutdown.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "dns/resolver.hpp"
#include "support/resolver_harness.hpp"

using namespace relayq;
using namespace relayq::test;
using namespace std::chrono_literals;

namespace {

// short.test lives one second.
constexpr const char* zone = R"(
Example.TEST.         MX    20 MX2.Example.test.
example.test.         MX    10 mx1.example.test.
mx1.example.test.     A     192.0.2.1
mx1.example.test.     A     192.0.2.2
mx1.example.test.     AAAA  2001:db8::1
v4only.test.          A     192.0.2.10
v6only.test.          AAAA  2001:DB8::10
nullmx.test.          MX    0 .
txt.test.             TXT   "v=spf1 " "-all"
txt.test.             TXT   "second"
short.test.      1    A     192.0.2.20
textonly.test.        TXT   "no addresses here"
alias.test.           CNAME mx1.example.test.
1.2.0.192.in-addr.arpa.   PTR  mx1.example.test.
1.2.0.192.in-addr.arpa.   PTR  Other.Example.TEST.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR mx1.example.test.
)";

struct Fixture : DnsFixture {
  Fixture() : DnsFixture(zone, {"servfail.test"}, {"silent.test"}) {}
};

}  // namespace

TEST_CASE("resolver answers MX records lower-cased without trailing dots", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto answer = harness.mx("EXAMPLE.test.");
  REQUIRE(answer.status == dns::Status::ok);
  REQUIRE(answer.records.size() == 2);
  std::map<std::uint16_t, std::string> hosts;
  for (const auto& record : answer.records) hosts[record.preference] = record.host;
  CHECK(hosts ==
        std::map<std::uint16_t, std::string>{{10, "mx1.example.test"}, {20, "mx2.example.test"}});
}

TEST_CASE("resolver retries over TCP when the UDP answer is truncated", "[dns]") {
  // 40 A records make an answer well over the 512 bytes of classic UDP.
  std::string many = zone;
  for (int i = 1; i <= 40; ++i) many += "many.test. A 192.0.2." + std::to_string(i) + "\n";
  DnsFixture fixture(many);
  const auto answer = fixture.harness.addresses("many.test");
  REQUIRE(answer.status == dns::Status::ok);
  CHECK(answer.addresses.size() == 40);
  CHECK(fixture.server.queries("many.test", "A") == 2);  // UDP, truncated; then TCP
}

TEST_CASE("resolver maps a null MX to an empty host", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto answer = harness.mx("nullmx.test");
  REQUIRE(answer.status == dns::Status::ok);
  REQUIRE(answer.records.size() == 1);
  CHECK(answer.records[0].preference == 0);
  CHECK(answer.records[0].host.empty());
}

TEST_CASE("resolver answers AAAA before A", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto answer = harness.addresses("mx1.example.test");
  REQUIRE(answer.status == dns::Status::ok);
  REQUIRE(answer.addresses.size() == 3);
  CHECK(answer.addresses[0].to_string() == "2001:db8::1");
  CHECK(answer.addresses[0].v6);
  std::set<std::string> v4{answer.addresses[1].to_string(), answer.addresses[2].to_string()};
  CHECK(v4 == std::set<std::string>{"192.0.2.1", "192.0.2.2"});
  CHECK_FALSE(answer.addresses[1].v6);
}

TEST_CASE("resolver answers a single address family and follows CNAMEs", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto v4 = harness.addresses("v4only.test");
  REQUIRE(v4.status == dns::Status::ok);
  REQUIRE(v4.addresses.size() == 1);
  CHECK(v4.addresses[0].to_string() == "192.0.2.10");
  const auto v6 = harness.addresses("v6only.test");
  REQUIRE(v6.status == dns::Status::ok);
  REQUIRE(v6.addresses.size() == 1);
  CHECK(v6.addresses[0].to_string() == "2001:db8::10");
  const auto alias = harness.addresses("alias.test");
  REQUIRE(alias.status == dns::Status::ok);
  CHECK(alias.addresses.size() == 3);
}

TEST_CASE("resolver answers TXT records with their strings joined", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto answer = harness.txt("txt.test");
  REQUIRE(answer.status == dns::Status::ok);
  std::set<std::string> records(answer.records.begin(), answer.records.end());
  CHECK(records == std::set<std::string>{"v=spf1 -all", "second"});
}

TEST_CASE("resolver answers PTR for IPv4 and IPv6", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto v4 = harness.ptr("192.0.2.1");
  REQUIRE(v4.status == dns::Status::ok);
  std::set<std::string> names(v4.names.begin(), v4.names.end());
  CHECK(names == std::set<std::string>{"mx1.example.test", "other.example.test"});
  CHECK(v4.names.size() == 2);
  const auto v6 = harness.ptr("2001:db8::1");
  REQUIRE(v6.status == dns::Status::ok);
  CHECK(v6.names == std::vector<std::string>{"mx1.example.test"});
  CHECK(harness.ptr("192.0.2.99").status == dns::Status::nxdomain);
  CHECK(harness.ptr("not-an-ip").status == dns::Status::nxdomain);
}

TEST_CASE("resolver reports NXDOMAIN", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto mx = harness.mx("nowhere.test");
  CHECK(mx.status == dns::Status::nxdomain);
  CHECK_THAT(mx.error, Catch::Contains("nowhere.test MX"));
  CHECK(harness.addresses("nowhere.test").status == dns::Status::nxdomain);
  CHECK(harness.txt("nowhere.test").status == dns::Status::nxdomain);
}

TEST_CASE("resolver reports NODATA for a name without the asked type", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  CHECK(harness.mx("textonly.test").status == dns::Status::nodata);
  CHECK(harness.addresses("textonly.test").status == dns::Status::nodata);
  CHECK(harness.txt("v4only.test").status == dns::Status::nodata);
  // An empty non-terminal exists too.
  CHECK(harness.mx("in-addr.arpa").status == dns::Status::nodata);
}

TEST_CASE("resolver maps SERVFAIL to temporary", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto mx = harness.mx("servfail.test");
  CHECK(mx.status == dns::Status::temporary);
  CHECK_FALSE(mx.error.empty());
  CHECK(harness.addresses("servfail.test").status == dns::Status::temporary);
}

TEST_CASE("resolver maps a timeout to temporary within the configured timeout", "[dns]") {
  Fixture fixture;
  auto options = test_resolver_options(fixture.server.address());
  options.timeout = 200ms;
  options.tries = 2;  // 200 ms, then 400 ms: c-ares doubles the timeout for the second round
  ResolverHarness harness(options);
  const auto started = std::chrono::steady_clock::now();
  const auto answer = harness.mx("silent.test");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(answer.status == dns::Status::temporary);
  CHECK(elapsed >= 500ms);
  CHECK(elapsed < 1500ms);
  CHECK(fixture.server.queries("silent.test", "MX") == 2);
}

TEST_CASE("resolver reports temporary when no server answers", "[dns]") {
  std::optional<std::string> address;
  {
    Fixture fixture;
    address = fixture.server.address();
  }
  ResolverHarness harness(test_resolver_options(*address));
  CHECK(harness.mx("example.test").status == dns::Status::temporary);
}

TEST_CASE("resolver answers from the cache after the server stopped", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  REQUIRE(harness.mx("example.test").status == dns::Status::ok);
  REQUIRE(harness.addresses("mx1.example.test").status == dns::Status::ok);
  REQUIRE(harness.txt("txt.test").status == dns::Status::ok);
  REQUIRE(harness.ptr("192.0.2.1").status == dns::Status::ok);
  fixture.server.stop();
  const auto mx = harness.mx("Example.Test.");
  CHECK(mx.status == dns::Status::ok);
  CHECK(mx.records.size() == 2);
  CHECK(harness.addresses("mx1.example.test").addresses.size() == 3);
  CHECK(harness.txt("txt.test").records.size() == 2);
  CHECK(harness.ptr("192.0.2.1").names.size() == 2);
  // Proof that the server is gone: a name not asked before fails.
  CHECK(harness.mx("v4only.test").status == dns::Status::temporary);
}

TEST_CASE("resolver caches negative answers", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  REQUIRE(harness.mx("nowhere.test").status == dns::Status::nxdomain);
  REQUIRE(harness.mx("textonly.test").status == dns::Status::nodata);
  fixture.server.stop();
  CHECK(harness.mx("nowhere.test").status == dns::Status::nxdomain);
  CHECK(harness.mx("textonly.test").status == dns::Status::nodata);
}

TEST_CASE("resolver caches temporary failures briefly", "[dns]") {
  Fixture fixture;
  auto options = test_resolver_options(fixture.server.address());
  options.tries = 1;
  options.temporary_ttl = 1s;
  ResolverHarness harness(options);
  REQUIRE(harness.mx("servfail.test").status == dns::Status::temporary);
  REQUIRE(harness.mx("servfail.test").status == dns::Status::temporary);
  CHECK(fixture.server.queries("servfail.test", "MX") == 1);
  std::this_thread::sleep_for(1500ms);
  REQUIRE(harness.mx("servfail.test").status == dns::Status::temporary);
  CHECK(fixture.server.queries("servfail.test", "MX") == 2);
}

TEST_CASE("resolver asks again once the TTL expired", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  REQUIRE(harness.addresses("short.test").status == dns::Status::ok);
  REQUIRE(harness.addresses("short.test").status == dns::Status::ok);
  CHECK(fixture.server.queries("short.test", "A") == 1);
  std::this_thread::sleep_for(1500ms);
  const auto again = harness.addresses("short.test");
  REQUIRE(again.status == dns::Status::ok);
  CHECK(again.addresses[0].to_string() == "192.0.2.20");
  CHECK(fixture.server.queries("short.test", "A") == 2);
  // The AAAA NODATA carries the SOA's 60 s: still cached.
  CHECK(fixture.server.queries("short.test", "AAAA") == 1);
}

TEST_CASE("resolver caps the negative TTL", "[dns]") {
  Fixture fixture;
  auto options = test_resolver_options(fixture.server.address());
  options.negative_ttl_cap = 1s;
  ResolverHarness harness(options);
  REQUIRE(harness.mx("nowhere.test").status == dns::Status::nxdomain);
  REQUIRE(harness.mx("nowhere.test").status == dns::Status::nxdomain);
  CHECK(fixture.server.queries("nowhere.test", "MX") == 1);
  std::this_thread::sleep_for(1500ms);
  REQUIRE(harness.mx("nowhere.test").status == dns::Status::nxdomain);
  CHECK(fixture.server.queries("nowhere.test", "MX") == 2);
}

TEST_CASE("resolver shares one query between identical concurrent lookups", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    harness.resolver.mx("example.test", [&answered](const dns::MxAnswer& answer) {
      answered += answer.status == dns::Status::ok;
    });
  }
  uv_run(harness.loop(), UV_RUN_DEFAULT);
  CHECK(answered == 5);
  CHECK(fixture.server.queries("example.test", "MX") == 1);
}

TEST_CASE("resolver cache is shared between loops", "[dns]") {
  Fixture fixture;
  const auto cache = dns::make_cache();
  const auto options = test_resolver_options(fixture.server.address());
  {
    ResolverHarness first(options, cache);
    REQUIRE(first.mx("example.test").status == dns::Status::ok);
  }
  // Another thread with its own loop and resolver finds the answer cached.
  std::optional<dns::MxAnswer> answer;
  std::thread other([&] {
    ResolverHarness second(options, cache);
    answer = second.mx("example.test");
  });
  other.join();
  REQUIRE(answer);
  CHECK(answer->status == dns::Status::ok);
  CHECK(fixture.server.queries("example.test", "MX") == 1);
}

TEST_CASE("resolver shutdown fails pending and later lookups as temporary", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  std::optional<dns::MxAnswer> pending;
  harness.resolver.mx("silent.test", [&pending](const dns::MxAnswer& answer) { pending = answer; });
  uv_run(harness.loop(), UV_RUN_NOWAIT);
  harness.resolver.shutdown();
  REQUIRE(pending);
  CHECK(pending->status == dns::Status::temporary);
  CHECK(harness.mx("example.test").status == dns::Status::temporary);
  CHECK(harness.closes_cleanly());
}

TEST_CASE("resolver lookups may start from a callback", "[dns]") {
  Fixture fixture;
  auto& harness = fixture.harness;
  const auto addresses = harness.wait<dns::AddressAnswer>([&](auto done) {
    harness.resolver.mx("example.test", [&harness, done](const dns::MxAnswer& mx) {
      harness.resolver.addresses(mx.records.at(0).host, done);
    });
  });
  CHECK(addresses.status != dns::Status::temporary);
}

TEST_CASE("resolver refuses unusable servers", "[dns]") {
  relayq::test::TestLoop loop;
  dns::ResolverOptions options;
  options.servers = {"not-an-address:53"};
  CHECK_THROWS_AS(dns::Resolver(loop.loop(), options, dns::make_cache()), std::invalid_argument);
}

TEST_CASE("status names", "[dns]") {
  CHECK(dns::to_string(dns::Status::ok) == "ok");
  CHECK(dns::to_string(dns::Status::nxdomain) == "nxdomain");
  CHECK(dns::to_string(dns::Status::nodata) == "nodata");
  CHECK(dns::to_string(dns::Status::temporary) == "temporary");
}
