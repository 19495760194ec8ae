// Unit tests of the router's order (the contract's): a domain's own [routes] entry, then the
// smarthost, then the domain's MX.
#include <catch2/catch.hpp>

#include "mta/config/config.hpp"
#include "mta/delivery/router.hpp"

namespace relayq::mta {
namespace {

TEST_CASE("A domain's route beats the smarthost, which beats MX", "[delivery][router]") {
  const Config config = parse_config(R"(
[delivery]
smarthost = "smarthost.test:587"
[routes."local.test"]
nexthop = "mailbox.test:2525"
)",
                                     "test.toml");
  const Router router(config);
  const Route local = router.route_for("local.test");
  CHECK(local.name == "mailbox.test");
  CHECK(local.port == 2525);
  const Route other = router.route_for("far.example");
  CHECK(other.name == "smarthost.test");
  CHECK(other.port == 587);

  const Router mx(parse_config("", "test.toml"));
  const Route direct = mx.route_for("far.example");
  CHECK(direct.key == "mx:far.example");
  CHECK(direct.port == 25);
}

}  // namespace
}  // namespace relayq::mta
