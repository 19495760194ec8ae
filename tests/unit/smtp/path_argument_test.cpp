// parse_path_argument: RFC 5321 paths, the null path, source routes, quoting, literals, UTF-8.
#include <catch2/catch.hpp>

#include <string>

#include "mta/smtp/path_argument.hpp"

using relayq::mta::parse_path_argument;
using relayq::mta::PathArgument;
using relayq::mta::PathStatus;

namespace {

PathArgument from(std::string_view argument) {
  return parse_path_argument(argument, "FROM", true);
}
PathArgument to(std::string_view argument) {
  return parse_path_argument(argument, "TO", false);
}

}  // namespace

TEST_CASE("a plain path", "[smtp_address]") {
  const PathArgument path = from("FROM:<alice@example.test>");
  CHECK(path.status == PathStatus::ok);
  CHECK(path.mailbox == "alice@example.test");
  CHECK(path.domain == "example.test");
  CHECK_FALSE(path.non_ascii);
  CHECK(path.params.empty());
}

TEST_CASE("the keyword is case-insensitive and a space may follow the colon", "[smtp_address]") {
  CHECK(from("from:<a@b.test>").mailbox == "a@b.test");
  CHECK(to("To: <a@b.test>").mailbox == "a@b.test");
}

TEST_CASE("the null reverse-path", "[smtp_address]") {
  const PathArgument path = from("FROM:<>");
  CHECK(path.status == PathStatus::ok);
  CHECK(path.mailbox.empty());
  CHECK(to("TO:<>").status == PathStatus::bad_path);
}

TEST_CASE("source routes are dropped", "[smtp_address]") {
  const PathArgument path = to("TO:<@relay.one,@relay.two:bob@example.test>");
  CHECK(path.status == PathStatus::ok);
  CHECK(path.mailbox == "bob@example.test");
  CHECK(to("TO:<@relay.one:bob@example.test>").mailbox == "bob@example.test");
  CHECK(to("TO:<@:bob@example.test>").status == PathStatus::bad_path);
  CHECK(to("TO:<@relay.one,bob@example.test>").status == PathStatus::bad_path);
}

TEST_CASE("quoted local parts are kept as written", "[smtp_address]") {
  const PathArgument path = to(R"(TO:<"john \"q\" doe>@x"@example.test>)");
  CHECK(path.status == PathStatus::ok);
  CHECK(path.mailbox == R"("john \"q\" doe>@x"@example.test)");
  CHECK(path.domain == "example.test");
  CHECK(to(R"(TO:<"unterminated@example.test>)").status == PathStatus::bad_path);
}

TEST_CASE("domain literals", "[smtp_address]") {
  CHECK(to("TO:<a@[192.0.2.1]>").domain == "[192.0.2.1]");
  CHECK(to("TO:<a@[IPv6:2001:db8::1]>").status == PathStatus::ok);
  CHECK(to("TO:<a@[x-tag:stuff]>").status == PathStatus::ok);
  CHECK(to("TO:<a@[192.0.2.256]>").status == PathStatus::bad_path);
  CHECK(to("TO:<a@[IPv6:zz::1]>").status == PathStatus::bad_path);
  CHECK(to("TO:<a@[192.0.2.1>").status == PathStatus::bad_path);
}

TEST_CASE("malformed paths", "[smtp_address]") {
  for (const char* text :
       {"TO:a@b.test", "TO:<a@b.test", "TO:<a@@b.test>", "TO:<a..b@c.test>", "TO:<.a@c.test>",
        "TO:<a@c..test>", "TO:<a@c.test.>", "TO:<a@-c.test>", "TO:<a@c-.test>", "TO:<a b@c.test>",
        "TO:<a@c_d.test>", "TO:<@c.test>", "TO:<a@>", "TO:<a@c.test>>"}) {
    INFO(text);
    CHECK(to(text).status != PathStatus::ok);
  }
  const std::string long_label(64, 'a');
  CHECK(to("TO:<a@" + long_label + ".test>").status == PathStatus::bad_path);
}

TEST_CASE("a local part without a domain", "[smtp_address]") {
  CHECK(to("TO:<postmaster>").status == PathStatus::no_domain);
  CHECK(from("FROM:<user>").status == PathStatus::no_domain);
}

TEST_CASE("a missing keyword is a syntax error", "[smtp_address]") {
  CHECK(to("<a@b.test>").status == PathStatus::bad_syntax);
  CHECK(to("TO<a@b.test>").status == PathStatus::bad_syntax);
  CHECK(from("TO:<a@b.test>").status == PathStatus::bad_syntax);
  CHECK(from("FROM:").status == PathStatus::bad_path);
}

TEST_CASE("ESMTP parameters", "[smtp_address]") {
  const PathArgument path = from("FROM:<a@b.test> SIZE=1000  BODY=8BITMIME SMTPUTF8");
  REQUIRE(path.status == PathStatus::ok);
  REQUIRE(path.params.size() == 3);
  CHECK(path.params[0].keyword == "SIZE");
  CHECK(path.params[0].value == "1000");
  CHECK(path.params[1].keyword == "BODY");
  CHECK(path.params[1].value == "8BITMIME");
  CHECK(path.params[2].keyword == "SMTPUTF8");
  CHECK_FALSE(path.params[2].has_value);
  CHECK(from("FROM:<> SIZE=5").params.size() == 1);
}

TEST_CASE("malformed ESMTP parameters", "[smtp_address]") {
  for (const char* text : {"FROM:<a@b.test>SIZE=1", "FROM:<a@b.test> =1",
                           "FROM:<a@b.test> SIZE=", "FROM:<a@b.test> -X", "FROM:<a@b.test> SI_ZE=1",
                           "FROM:<a@b.test> A=b=c"}) {
    INFO(text);
    CHECK(from(text).status == PathStatus::bad_syntax);
  }
}

TEST_CASE("UTF-8 addresses are recognised and validated", "[smtp_address]") {
  const PathArgument path = to("TO:<j\xC3\xB6rg@\xC3\xB6land.test>");
  CHECK(path.status == PathStatus::ok);
  CHECK(path.non_ascii);
  CHECK(to("TO:<\"q\xE2\x82\xAC\"@b.test>").non_ascii);
  CHECK(to("TO:<j\xC3@b.test>").status == PathStatus::bad_path);          // truncated
  CHECK(to("TO:<j\xC0\xAF@b.test>").status == PathStatus::bad_path);      // overlong
  CHECK(to("TO:<j\xED\xA0\x80@b.test>").status == PathStatus::bad_path);  // surrogate
}
