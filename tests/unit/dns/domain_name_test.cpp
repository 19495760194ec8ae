// Domain names without regard to ASCII case (RFC 4343), and the domain of a mailbox.
#include <catch2/catch.hpp>

#include "dns/domain_name.hpp"

using relayq::dns::domain_of_mailbox;
using relayq::dns::lower_case;

TEST_CASE("domain names are lower-cased in ASCII only", "[dns]") {
  CHECK(lower_case("Example.ORG") == "example.org");
  CHECK(lower_case("xn--BCHER-kva.Test") == "xn--bcher-kva.test");
  // Bytes above 0x7F are left as they are, whatever the locale.
  CHECK(lower_case("\xC3\x84.TEST") == "\xC3\x84.test");
}

TEST_CASE("recipient domains are lower-cased after the last at sign", "[dns]") {
  CHECK(domain_of_mailbox("User@Example.ORG") == "example.org");
  CHECK(domain_of_mailbox("\"a@b\"@c.test") == "c.test");
  CHECK(domain_of_mailbox("postmaster").empty());
}
