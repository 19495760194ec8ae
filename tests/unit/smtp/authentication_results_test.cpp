// Unit tests of the Authentication-Results: header (RFC 8601): the layout, quoting of values
// that are not tokens, escaped comments, and "none".
#include <catch2/catch.hpp>

#include "mta/smtp/authentication_results.hpp"

namespace relayq::mta {
namespace {

TEST_CASE("Authentication-Results lists each result under our authserv-id", "[smtp][policy]") {
  const std::vector<AuthResult> results = {
      {"spf", "pass", "", {{"smtp.mailfrom", "a.b@example.com"}}},
      {"dkim",
       "pass",
       "",
       {{"header.d", "example.com"}, {"header.s", "s1"}, {"header.b", "AbC+/1x="}}},
      {"dmarc", "fail", "p=reject", {{"header.from", "example.com"}}},
      {"iprev", "pass", "mail.example.com", {{"policy.iprev", "192.0.2.1"}}},
  };
  CHECK(format_authentication_results("mx.relayq.test", results) ==
        "Authentication-Results: mx.relayq.test;\r\n"
        "\tspf=pass smtp.mailfrom=a.b@example.com;\r\n"
        "\tdkim=pass header.d=example.com header.s=s1 header.b=\"AbC+/1x=\";\r\n"
        "\tdmarc=fail (p=reject) header.from=example.com;\r\n"
        "\tiprev=pass (mail.example.com) policy.iprev=192.0.2.1\r\n");
}

TEST_CASE("Values and comments cannot break out of the header", "[smtp][policy]") {
  const std::vector<AuthResult> results = {
      {"spf", "fail", "a) b(\\", {{"smtp.mailfrom", "\"odd local\"@example.com"}}},
      {"spf", "none", "", {{"smtp.helo", "x;\r\nX-Injected: 1"}}},
  };
  CHECK(format_authentication_results("mx", results) ==
        "Authentication-Results: mx;\r\n"
        "\tspf=fail (a\\) b\\(\\\\) smtp.mailfrom=\"\\\"odd local\\\"@example.com\";\r\n"
        "\tspf=none smtp.helo=\"x;X-Injected: 1\"\r\n");
}

TEST_CASE("Authentication-Results without results says none", "[smtp][policy]") {
  CHECK(format_authentication_results("mx", {}) == "Authentication-Results: mx; none\r\n");
}

}  // namespace
}  // namespace relayq::mta
