// Unit tests of the per-address connection limits: open connections, connections begun within
// a minute, release, and addresses kept apart.
#include <catch2/catch.hpp>

#include "mta/inbound/client_limits.hpp"

namespace relayq::mta {
namespace {

using Verdict = ClientLimits::Verdict;

dns::IpAddress address(const char* text) {
  return *dns::IpAddress::parse(text);
}

TEST_CASE("Open connections per address are limited and released", "[inbound][limits]") {
  ClientLimits limits;
  const ClientLimits::Limits two{.connections = 2, .per_minute = 0};
  const auto now = ClientLimits::Clock::now();
  const auto a = address("192.0.2.1");
  CHECK(limits.admit(a, two, now) == Verdict::admitted);
  CHECK(limits.admit(a, two, now) == Verdict::admitted);
  CHECK(limits.admit(a, two, now) == Verdict::too_many_connections);
  CHECK(limits.admit(address("192.0.2.2"), two, now) == Verdict::admitted);  // another address
  limits.release(a);
  CHECK(limits.admit(a, two, now) == Verdict::admitted);
}

TEST_CASE("Connections begun per minute are limited, then allowed again", "[inbound][limits]") {
  ClientLimits limits;
  const ClientLimits::Limits three{.connections = 100, .per_minute = 3};
  const auto start = ClientLimits::Clock::now();
  const auto a = address("2001:db8::1");
  for (int i = 0; i < 3; ++i) {
    CHECK(limits.admit(a, three, start) == Verdict::admitted);
    limits.release(a);  // closing does not give the minute's count back
  }
  CHECK(limits.admit(a, three, start + std::chrono::seconds(59)) == Verdict::too_many_per_minute);
  CHECK(limits.admit(a, three, start + std::chrono::seconds(61)) == Verdict::admitted);
}

}  // namespace
}  // namespace relayq::mta
