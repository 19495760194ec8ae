// IP addresses and CIDR networks: text, socket addresses, membership.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>

#include "dns/ip_address.hpp"
#include "support/addresses.hpp"

using relayq::dns::Cidr;
using relayq::dns::IpAddress;
using relayq::test::cidr;
using relayq::test::ip;

TEST_CASE("IP addresses parse and print", "[dns]") {
  CHECK_FALSE(ip("192.0.2.1").v6);
  CHECK(ip("192.0.2.1").to_string() == "192.0.2.1");
  CHECK(ip("2001:DB8:0:0::1").v6);
  CHECK(ip("2001:DB8:0:0::1").to_string() == "2001:db8::1");
  CHECK(ip("::ffff:10.1.2.3").to_string() == "::ffff:10.1.2.3");
  CHECK(ip("::ffff:10.1.2.3") != ip("10.1.2.3"));  // kept as the socket gave it

  for (const char* bad : {"", "192.0.2", "192.0.2.256", "192.0.2.1 ", "[::1]", "::1::2",
                          "fe80::1%eth0", "localhost", "192.0.2.1/32"}) {
    INFO(bad);
    CHECK_FALSE(IpAddress::parse(bad));
  }
}

TEST_CASE("IP addresses come from socket addresses", "[dns]") {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "198.51.100.7", &in.sin_addr);
  const auto v4 = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in));
  REQUIRE(v4);
  CHECK(*v4 == ip("198.51.100.7"));

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:198.51.100.7", &in6.sin6_addr);
  const auto mapped = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
  REQUIRE(mapped);
  CHECK(*mapped == ip("::ffff:198.51.100.7"));

  sockaddr unix_address{};
  unix_address.sa_family = AF_UNIX;
  CHECK_FALSE(IpAddress::from_sockaddr(&unix_address));
  CHECK_FALSE(IpAddress::from_sockaddr(nullptr));
}

TEST_CASE("CIDR networks parse, with host bits cleared", "[dns]") {
  CHECK(cidr("10.0.0.0/8").prefix == 8);
  CHECK(cidr("10.1.2.3/8").network == ip("10.0.0.0"));
  CHECK(cidr("10.1.2.3/12").network == ip("10.0.0.0"));
  CHECK(cidr("10.31.2.3/12").network == ip("10.16.0.0"));
  CHECK(cidr("2001:db8:ffff::1/33").network == ip("2001:db8:8000::"));
  CHECK(cidr("192.0.2.1").prefix == 32);  // a bare address is a host route
  CHECK(cidr("::1").prefix == 128);
  CHECK(cidr("0.0.0.0/0").prefix == 0);
  CHECK(cidr("::/0").prefix == 0);

  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x",
        "10.0.0.0/ 8", "10.0.0.0/0008", "10.0.0/8", "10.0.0.0/8/8", "example.org/8"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad));
  }
}

TEST_CASE("CIDR networks contain their addresses", "[dns]") {
  SECTION("IPv4") {
    CHECK(cidr("10.0.0.0/8").contains(ip("10.255.255.255")));
    CHECK_FALSE(cidr("10.0.0.0/8").contains(ip("11.0.0.0")));
    CHECK(cidr("192.0.2.128/25").contains(ip("192.0.2.200")));
    CHECK_FALSE(cidr("192.0.2.128/25").contains(ip("192.0.2.127")));
    CHECK(cidr("192.0.2.1/32").contains(ip("192.0.2.1")));
    CHECK_FALSE(cidr("192.0.2.1/32").contains(ip("192.0.2.2")));
    CHECK(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
    CHECK_FALSE(cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
  }
  SECTION("IPv6") {
    CHECK(cidr("2001:db8::/32").contains(ip("2001:db8:1234::1")));
    CHECK_FALSE(cidr("2001:db8::/32").contains(ip("2001:db9::1")));
    CHECK(cidr("::1/128").contains(ip("::1")));
    CHECK_FALSE(cidr("::1/128").contains(ip("::2")));
    CHECK(cidr("::/0").contains(ip("2001:db8::1")));
    CHECK_FALSE(cidr("::/0").contains(ip("127.0.0.1")));  // a v4 socket's client is not IPv6
    CHECK_FALSE(cidr("::1/128").contains(ip("127.0.0.1")));
  }
  SECTION("IPv4-mapped IPv6 clients match IPv4 networks") {
    CHECK(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
    CHECK_FALSE(cidr("127.0.0.0/8").contains(ip("::ffff:128.0.0.1")));
    CHECK(cidr("0.0.0.0/0").contains(ip("::ffff:203.0.113.9")));
    CHECK(cidr("::ffff:0:0/96").contains(ip("::ffff:203.0.113.9")));
    // Only ::ffff:0:0/96 is mapped: the deprecated compatible form ::a.b.c.d is plain IPv6.
    CHECK_FALSE(cidr("127.0.0.0/8").contains(ip("::127.0.0.1")));
    CHECK_FALSE(cidr("127.0.0.0/8").contains(ip("64:ff9b::127.0.0.1")));
  }
}
