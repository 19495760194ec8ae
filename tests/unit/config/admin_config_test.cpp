// The [admin] table: the listen address and the bearer token, required off loopback.
#include <catch2/catch.hpp>

#include "mta/config/config.hpp"

namespace relayq::mta {

TEST_CASE("Admin config defaults to loopback without a token", "[admin][config]") {
  const auto config = parse_config("", "relayq.toml");
  CHECK(config.admin.listen == "127.0.0.1:8025");
  CHECK(config.admin.token.empty());
}

TEST_CASE("Admin config takes any token string", "[admin][config]") {
  const auto config = parse_config(
      "[admin]\nlisten = \"0.0.0.0:8025\"\ntoken = \"t0k3n with spaces\"\n", "relayq.toml");
  CHECK(config.admin.listen == "0.0.0.0:8025");
  CHECK(config.admin.token == "t0k3n with spaces");
  CHECK_THROWS_WITH(parse_config("[admin]\ntoken = 42\n", "relayq.toml"),
                    "relayq.toml:2: admin.token: must be a string");
}

TEST_CASE("Admin config needs a token when admin.listen is not loopback", "[admin][config]") {
  for (const auto* address : {"127.0.0.1:8025", "127.3.4.5:8025", "[::1]:8025"}) {
    INFO(address);
    CHECK_NOTHROW(parse_config(std::string("[admin]\nlisten = \"") + address + "\"\n", "r.toml"));
  }
  for (const auto* address :
       {"0.0.0.0:8025", "192.0.2.1:8025", "[::]:8025", "[2001:db8::1]:8025"}) {
    INFO(address);
    CHECK_THROWS_WITH(
        parse_config(std::string("\n[admin]\nlisten = \"") + address + "\"\n", "r.toml"),
        "r.toml:3: admin.token: required when admin.listen is not loopback");
  }
}

}  // namespace relayq::mta
