// Unit tests of relay rights.
#include <catch2/catch.hpp>

#include "policy/relay_rules.hpp"
#include "support/addresses.hpp"

using relayq::dns::Cidr;
using relayq::policy::RelayRules;
using relayq::test::cidr;
using relayq::test::ip;

TEST_CASE("RelayRules: trusted networks relay anywhere, anyone reaches accepted domains",
          "[policy][relay]") {
  const RelayRules rules({cidr("127.0.0.0/8"), cidr("::1/128"), cidr("2001:db8::/32")},
                         {"Example.ORG", "mx.example.net"});

  SECTION("trusted networks relay anywhere") {
    CHECK(rules.is_trusted_network(ip("127.0.0.1")));
    CHECK(rules.is_trusted_network(ip("::ffff:127.1.2.3")));
    CHECK(rules.is_trusted_network(ip("::1")));
    CHECK(rules.is_trusted_network(ip("2001:db8::25")));
    CHECK_FALSE(rules.is_trusted_network(ip("192.0.2.1")));
    CHECK(rules.may_send(ip("127.0.0.1"), false, "anywhere.test"));
  }
  SECTION("accepted domains are compared case-insensitively") {
    CHECK(rules.is_accepted_domain("example.org"));
    CHECK(rules.is_accepted_domain("EXAMPLE.org"));
    CHECK(rules.is_accepted_domain("MX.Example.Net"));
    CHECK_FALSE(rules.is_accepted_domain("sub.example.org"));
    CHECK_FALSE(rules.is_accepted_domain("example.org.evil"));
    CHECK_FALSE(rules.is_accepted_domain(""));
  }
  SECTION("outsiders only reach accepted domains, unless authenticated") {
    CHECK(rules.may_send(ip("192.0.2.1"), false, "Example.Org"));
    CHECK_FALSE(rules.may_send(ip("192.0.2.1"), false, "elsewhere.test"));
    CHECK_FALSE(rules.may_send(ip("::ffff:192.0.2.1"), false, "elsewhere.test"));
    CHECK(rules.may_send(ip("192.0.2.1"), true, "elsewhere.test"));
  }
  SECTION("no rules: only authenticated clients relay") {
    const RelayRules none;
    CHECK_FALSE(none.may_send(ip("127.0.0.1"), false, "example.org"));
    CHECK(none.may_send(ip("127.0.0.1"), true, "example.org"));
  }
}
