// Unit tests of the router's order (the contract's): a domain's own [routes] entry, then the
// smarthost, then the domain's MX; and LMTP routes.
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

TEST_CASE("LMTP routes speak LMTP, over TCP or a unix socket without TLS", "[delivery][router]") {
  const Router router(parse_config(R"(
[routes."tcp.test"]
nexthop = "lmtp:127.0.0.1:24"
[routes."unix.test"]
nexthop = "lmtp:unix:/run/dovecot/lmtp"
)",
                                   "test.toml"));
  const Route tcp = router.route_for("tcp.test");
  CHECK(tcp.lmtp);
  CHECK(tcp.key == "lmtp:127.0.0.1:24");
  CHECK(tcp.name == "127.0.0.1");
  CHECK(tcp.port == 24);
  CHECK(tcp.unix_path.empty());
  const Route unix_socket = router.route_for("unix.test");
  CHECK(unix_socket.lmtp);
  CHECK(unix_socket.key == "lmtp:unix:/run/dovecot/lmtp");
  CHECK(unix_socket.unix_path == "/run/dovecot/lmtp");
  CHECK(unix_socket.tls == TlsPolicy::off);  // whatever [delivery] tls says
  CHECK_FALSE(router.route_for("other.test").lmtp);
}

}  // namespace
}  // namespace relayq::mta
