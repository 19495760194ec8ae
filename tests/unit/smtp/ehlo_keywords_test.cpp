// parse_ehlo_reply: the keywords a server announces (STARTTLS among them), and SIZE with or
// without its limit.
#include <catch2/catch.hpp>

#include "mta/smtp/ehlo_keywords.hpp"

using relayq::mta::parse_ehlo_reply;

TEST_CASE("EHLO parser reads keywords and SIZE", "[client_ehlo]") {
  SECTION("greeting line only") {
    const auto ext = parse_ehlo_reply("250 mx.test");
    CHECK_FALSE(ext.pipelining);
    CHECK_FALSE(ext.size);
  }
  SECTION("keywords are case-insensitive and unknown ones ignored") {
    const auto ext = parse_ehlo_reply(
        "250-mx.test PIPELINING\n250-Pipelining\n250-XCLIENT NAME\n250-8bitmime\n250 AUTH PLAIN");
    CHECK(ext.pipelining);
    CHECK(ext.eight_bit_mime);
    CHECK_FALSE(ext.smtputf8);
    CHECK_FALSE(ext.chunking);
  }
  SECTION("STARTTLS, in any case, parameters or not") {
    CHECK_FALSE(parse_ehlo_reply("250-mx.test\n250 PIPELINING").starttls);
    CHECK(parse_ehlo_reply("250-mx.test\n250 STARTTLS").starttls);
    CHECK(parse_ehlo_reply("250-mx.test\n250-StartTLS\n250 SIZE 10").starttls);
    CHECK(parse_ehlo_reply("250-mx.test\n250 starttls").starttls);
    // Only as a keyword of its own line: not in the greeting line, not as a prefix.
    CHECK_FALSE(parse_ehlo_reply("250-mx.test STARTTLS\n250 8BITMIME").starttls);
    CHECK_FALSE(parse_ehlo_reply("250-mx.test\n250 STARTTLSX").starttls);
  }
  SECTION("SIZE values") {
    CHECK(parse_ehlo_reply("250-mx\n250 SIZE 1024").size_limit == 1024u);
    CHECK_FALSE(parse_ehlo_reply("250-mx\n250 SIZE 0").size_limit);
    CHECK_FALSE(parse_ehlo_reply("250-mx\n250 SIZE").size_limit);
    CHECK_FALSE(parse_ehlo_reply("250-mx\n250 SIZE lots").size_limit);
    CHECK_FALSE(parse_ehlo_reply("250-mx\n250 SIZE 99999999999999999999999").size_limit);
    CHECK(parse_ehlo_reply("250-mx\n250 SIZE lots").size);
  }
}
