// Unit tests of traffic shaping's arithmetic: the GCRA rate, a lane's connection shares and
// its slow-down and recovery steps, the shaper's lanes by name and MX host set, and the router's
// destinations for shaped domains. The [shaping] keys themselves: config_test.cpp.
#include <catch2/catch.hpp>

#include "mta/config/config.hpp"
#include "mta/delivery/rate_limiter.hpp"
#include "mta/delivery/router.hpp"
#include "mta/delivery/shaping.hpp"

namespace relayq::mta {
namespace {

constexpr std::int64_t kSecond = 1'000'000;

// How many events a limiter allows in `seconds` when asked every millisecond.
int events_in(RateLimiter& limiter, std::int64_t start_us, int seconds) {
  int events = 0;
  for (std::int64_t t = start_us; t < start_us + seconds * kSecond; t += 1000)
    events += limiter.take(t) == 0 ? 1 : 0;
  return events;
}

TEST_CASE("A rate limiter allows its rate, with a small burst after a quiet spell",
          "[delivery][shaping]") {
  RateLimiter unlimited;
  CHECK(events_in(unlimited, 0, 1) == 1000);
  CHECK(unlimited.available(0) > 1'000'000);

  RateLimiter limiter(50);  // burst 2
  CHECK(limiter.available(10 * kSecond) == 2);
  // The first second has the burst's extra event; later seconds have the rate exactly.
  CHECK(events_in(limiter, 10 * kSecond, 1) == 51);
  CHECK(events_in(limiter, 11 * kSecond, 4) == 200);

  RateLimiter exact(10, 1);
  CHECK(exact.available(0) == 1);
  CHECK(exact.take(0) == 0);
  CHECK(exact.available(0) == 0);
  CHECK(exact.take(0) == 100'000);  // the next one is a tenth of a second away
  CHECK(exact.wait(40'000) == 60'000);
  CHECK(exact.take(100'000) == 0);

  SECTION("a new rate applies from now on") {
    RateLimiter slowed(10, 1);
    CHECK(slowed.take(0) == 0);
    slowed.set_rate(1);
    CHECK(slowed.take(100'000) == 0);  // already allowed at the old rate
    CHECK(slowed.take(100'000) == kSecond);
  }
}

LaneLimits limits(std::uint32_t connections, double rate, double factor = 0.5,
                  std::uint32_t recover_after = 3) {
  LaneLimits out;
  out.shaping.max_connections = connections;
  out.shaping.max_message_rate = rate;
  out.slowdown_factor = factor;
  out.recover_after = recover_after;
  return out;
}

TEST_CASE("Each loop opens its share of a lane's connections", "[delivery][shaping]") {
  Lane lane("gmail.com", limits(5, 0), true, 2);
  CHECK(lane.open_connection(0, 0) == 0);
  CHECK(lane.open_connection(0, 2) == 0);
  CHECK(lane.open_connection(0, 3) == -1);  // 5 over 2 loops: 3 each
  CHECK(lane.status().connections == 2);
  lane.connection_closed();
  CHECK(lane.status().connections == 1);

  Lane single("one.example", limits(1, 0), true, 4);
  CHECK(single.open_connection(0, 0) == 0);  // never less than one per loop
  CHECK(single.open_connection(0, 1) == -1);
}

TEST_CASE("A connection rate spaces out new connections", "[delivery][shaping]") {
  LaneLimits slow = limits(10, 0);
  slow.shaping.max_connection_rate = 2;
  Lane lane("slow.example", slow, true, 1);
  CHECK(lane.open_connection(0, 0) == 0);
  CHECK(lane.open_connection(0, 1) == 0);  // the burst
  CHECK(lane.open_connection(0, 2) == 500'000);
}

TEST_CASE("A slow-down lowers rate and connections a step at a time; successes undo it",
          "[delivery][shaping]") {
  Lane lane("gmail.com", limits(8, 40), true, 1);
  CHECK(lane.slow_down(10 * kSecond));
  auto status = lane.status();
  CHECK(status.slowdown_steps == 1);
  CHECK(status.level == Approx(0.5));
  CHECK(status.message_rate == Approx(20));
  CHECK(status.max_connections == 4);
  CHECK(lane.should_close(0, 5));
  CHECK_FALSE(lane.should_close(0, 4));

  // A burst of such replies is one step.
  CHECK_FALSE(lane.slow_down(10 * kSecond + 500'000));
  CHECK(lane.slow_down(12 * kSecond));
  CHECK(lane.status().message_rate == Approx(10));
  CHECK(lane.status().max_connections == 2);

  // recover_after (3) deliveries per step back up.
  CHECK_FALSE(lane.delivered());
  CHECK_FALSE(lane.delivered());
  CHECK(lane.delivered());
  CHECK(lane.status().message_rate == Approx(20));
  // A "slow down" within the spacing takes no step but starts the count again.
  CHECK_FALSE(lane.delivered());
  CHECK_FALSE(lane.slow_down(12 * kSecond + 100'000));
  CHECK(lane.status().slowdown_steps == 1);
  CHECK_FALSE(lane.delivered());
  CHECK_FALSE(lane.delivered());
  CHECK(lane.delivered());
  status = lane.status();
  CHECK(status.slowdown_steps == 0);
  CHECK(status.message_rate == Approx(40));
  CHECK(status.max_connections == 8);
  CHECK_FALSE(lane.delivered());  // nothing to recover
}

TEST_CASE("A lane with no rate slows down from the pace it had", "[delivery][shaping]") {
  Lane lane("fast.example", limits(4, 0), false, 1);
  for (int k = 0; k < 11; ++k) CHECK(lane.take_message(10 * kSecond + k * 10'000) == 0);
  CHECK(lane.slow_down(11 * kSecond));
  // 10 intervals of 10 ms: 100/s, halved.
  CHECK(lane.status().message_rate == Approx(50));
  for (int k = 0; k < 3; ++k) lane.delivered();
  CHECK(lane.status().message_rate == 0);  // unlimited again

  Lane fixed("fixed.example", limits(4, 0, 1.0), false, 1);
  CHECK_FALSE(fixed.slow_down(kSecond));  // slowdown_factor = 1: never slows down
  CHECK(fixed.status().level == 1);
}

TEST_CASE("Slow-downs stop at kMaxSteps", "[delivery][shaping]") {
  Lane lane("gmail.com", limits(64, 64), true, 1);
  for (std::uint32_t k = 0; k < Lane::kMaxSteps + 3; ++k) lane.slow_down(k * 2 * kSecond);
  CHECK(lane.status().slowdown_steps == Lane::kMaxSteps);
  CHECK(lane.status().message_rate == Approx(1));
  CHECK(lane.status().max_connections == 1);
}

TEST_CASE("The shaper hands out one lane per name, with its entry's limits",
          "[delivery][shaping]") {
  const Config config = parse_config(R"(
[delivery]
max_connections_per_destination = 7
max_message_rate = "600/m"
[shaping."gmail.com"]
max_connections = 3
max_message_rate = "50/s"
max_messages_per_connection = 100
[shaping."mx:outlook.com"]
max_message_rate = "3600/h"
)",
                                     "test.toml");
  Shaper shaper(ShapingSettings::from(config), 1);
  const auto gmail = shaper.lane("gmail.com");
  CHECK(shaper.lane("gmail.com") == gmail);
  CHECK(gmail->status().max_connections == 3);
  CHECK(gmail->status().message_rate == Approx(50));
  CHECK_FALSE(gmail->should_close(99, 1));
  CHECK(gmail->should_close(100, 1));
  const auto other = shaper.lane("other.example");
  CHECK(other->status().max_connections == 7);
  CHECK(other->status().message_rate == Approx(10));

  CHECK(shaper.status().at(1).message_rate == Approx(1));  // mx:outlook.com, not used yet
  CHECK(shaper.has_mx_rules());
  CHECK(shaper.mx_lane({"contoso-com.mail.protection.outlook.com"}) == "mx:outlook.com");
  CHECK(shaper.mx_lane({"OUTLOOK.COM."}) == "mx:outlook.com");
  CHECK(shaper.mx_lane({"notoutlook.com", "mx.example"}).empty());

  // The status lists configured lanes, used or not (and slowed ones), not every destination.
  CHECK(shaper.status().size() == 2);
  other->slow_down(kSecond);
  const auto listed = shaper.status();
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].name == "gmail.com");
  CHECK(listed[1].name == "mx:outlook.com");
  CHECK(listed[2].name == "other.example");
  CHECK(listed[2].message_rate == Approx(5));

  SECTION("a reload gives lanes in use their new limits") {
    shaper.configure(
        ShapingSettings::from(parse_config("[shaping.\"gmail.com\"]\n"
                                           "max_message_rate = \"5/s\"\n",
                                           "test.toml")));
    CHECK(gmail->status().message_rate == Approx(5));
    CHECK(gmail->status().max_connections == 20);
    CHECK(other->status().message_rate == 0);
    CHECK_FALSE(shaper.has_mx_rules());
  }
}

TEST_CASE("A shaped domain gets a destination of its own on a shared route",
          "[delivery][shaping]") {
  const Config config = parse_config(R"(
[delivery]
smarthost = "smarthost.test:587"
[shaping."gmail.com"]
max_connections = 2
)",
                                     "test.toml");
  const Router router(config);
  const Route gmail = router.route_for("gmail.com");
  const Route other = router.route_for("example.org");
  CHECK(gmail.shaping == "gmail.com");
  CHECK(other.shaping.empty());
  CHECK(gmail.key != other.key);
  CHECK(gmail.name == other.name);
}

}  // namespace
}  // namespace relayq::mta
