// Addresses and networks from text for tests: a typo in a test fails it, not the program.
#pragma once

#include <catch2/catch.hpp>

#include <string_view>

#include "dns/ip_address.hpp"

namespace relayq::test {

inline dns::IpAddress ip(std::string_view text) {
  const auto address = dns::IpAddress::parse(text);
  REQUIRE(address);
  return *address;
}

inline dns::Cidr cidr(std::string_view text) {
  const auto network = dns::Cidr::parse(text);
  REQUIRE(network);
  return *network;
}

}  // namespace relayq::test
