// SPF processing limits (RFC 7208 4.6.4) and DNS errors: 10 lookup terms across includes and
// redirects, 2 void lookups, 10 MX names, the first 10 PTR names; temperror from lookups.
#include <catch2/catch.hpp>

#include <algorithm>

#include "policy/spf_test_dns.hpp"

using relayq::policy::SpfResult;
using relayq::test::check;
using relayq::test::SpfTestDns;

namespace {

std::string repeated(const std::string& term, int times) {
  std::string text;
  for (int i = 0; i < times; ++i) text += " " + term;
  return text;
}

}  // namespace

TEST_CASE("SPF allows 10 lookup terms and fails the 11th, across includes", "[spf]") {
  SpfTestDns dns;
  dns.address("host.example.com", "192.0.2.99")
      .txt_record("ten.example.com", "v=spf1" + repeated("a:host.example.com", 10) + " +all")
      .txt_record("eleven.example.com", "v=spf1" + repeated("a:host.example.com", 11) + " +all")
      .txt_record("inc.example.com", "v=spf1" + repeated("a:host.example.com", 8))
      .txt_record("via-include.example.com",
                  "v=spf1 include:inc.example.com a:host.example.com +all")
      .txt_record("over-include.example.com",
                  "v=spf1 include:inc.example.com a:host.example.com a:host.example.com +all")
      .txt_record("loop.example.com", "v=spf1 include:loop.example.com +all")
      .txt_record("redirect-loop.example.com", "v=spf1 redirect=redirect-loop.example.com");
  CHECK(check(dns, "192.0.2.1", "a@ten.example.com").result == SpfResult::pass);
  const auto eleven = check(dns, "192.0.2.1", "a@eleven.example.com");
  CHECK(eleven.result == SpfResult::permerror);
  CHECK(eleven.problem == "eleven.example.com: more than 10 DNS lookups");
  CHECK(check(dns, "192.0.2.1", "a@via-include.example.com").result == SpfResult::pass);
  CHECK(check(dns, "192.0.2.1", "a@over-include.example.com").result == SpfResult::permerror);
  CHECK(check(dns, "192.0.2.1", "a@loop.example.com").result == SpfResult::permerror);
  dns.queries.clear();
  CHECK(check(dns, "192.0.2.1", "a@redirect-loop.example.com").result == SpfResult::permerror);
  CHECK(dns.queries.size() == 11);  // the first record and 10 redirects
}

TEST_CASE("SPF allows 2 void lookups; the exp= lookup does not count", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("two.example.com", "v=spf1 a:none1.example.com mx:none2.example.com -all")
      .txt_record("three.example.com",
                  "v=spf1 a:none1.example.com exists:none2.example.com ptr:x.example -all")
      .txt_record("exp.example.com",
                  "v=spf1 a:none1.example.com a:none2.example.com -all exp=none3.example.com");
  CHECK(check(dns, "192.0.2.1", "a@two.example.com").result == SpfResult::fail);
  const auto three = check(dns, "192.0.2.1", "a@three.example.com");
  CHECK(three.result == SpfResult::permerror);
  CHECK_THAT(three.problem, Catch::Contains("void lookups"));
  CHECK(check(dns, "192.0.2.1", "a@exp.example.com").result == SpfResult::fail);
}

TEST_CASE("SPF mx: at most 10 MX names, no fallback to A, null MX matches nothing", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("ten.example.com", "v=spf1 mx -all")
      .txt_record("eleven.example.com", "v=spf1 mx -all")
      .txt_record("noxm.example.com", "v=spf1 mx -all")
      .address("noxm.example.com", "192.0.2.1")
      .txt_record("null.example.com", "v=spf1 mx -all")
      .mx_record("null.example.com", 0, "")
      .address("last.example.com", "192.0.2.1");
  for (int i = 0; i < 9; ++i) {
    dns.mx_record("ten.example.com", i, "other.example.com");
    dns.mx_record("eleven.example.com", i, "other.example.com");
  }
  dns.mx_record("ten.example.com", 9, "last.example.com");
  dns.mx_record("eleven.example.com", 9, "other.example.com");
  dns.mx_record("eleven.example.com", 10, "last.example.com");
  CHECK(check(dns, "192.0.2.1", "a@ten.example.com").result == SpfResult::pass);
  const auto eleven = check(dns, "192.0.2.1", "a@eleven.example.com");
  CHECK(eleven.result == SpfResult::permerror);
  CHECK_THAT(eleven.problem, Catch::Contains("more than 10 MX records"));
  CHECK(check(dns, "192.0.2.1", "a@noxm.example.com").result == SpfResult::fail);
  CHECK(check(dns, "192.0.2.1", "a@null.example.com").result == SpfResult::fail);
}

TEST_CASE("SPF ptr: validated names under the target, the first 10 only", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("example.com", "v=spf1 ptr -all")
      .txt_record("example.org", "v=spf1 ptr:Example.ORG -all")
      .ptr_record("192.0.2.1", "mail.example.com")
      .address("mail.example.com", "192.0.2.1")
      .ptr_record("192.0.2.2", "forged.example.com")  // its A does not lead back
      .address("forged.example.com", "192.0.2.200")
      .address("mail.example.org", "192.0.2.3");
  for (int i = 0; i < 10; ++i)
    dns.ptr_record("192.0.2.3", "n" + std::to_string(i) + ".example.net");
  dns.ptr_record("192.0.2.3", "mail.example.org");
  CHECK(check(dns, "192.0.2.1", "a@example.com").result == SpfResult::pass);
  CHECK(check(dns, "192.0.2.2", "a@example.com").result == SpfResult::fail);
  CHECK(check(dns, "192.0.2.3", "a@example.org").result == SpfResult::fail);  // 11th name
  dns.failing("192.0.2.9");
  // A PTR lookup error is no match (5.5), not temperror.
  dns.txt_record("neutral.example.com", "v=spf1 ptr");
  CHECK(check(dns, "192.0.2.9", "a@neutral.example.com").result == SpfResult::neutral);
}

TEST_CASE("SPF DNS failures are temperrors, except in ptr and exp", "[spf]") {
  SpfTestDns dns;
  dns.failing("down.example.com")
      .txt_record("a.example.com", "v=spf1 a:down.example.com -all")
      .txt_record("mx.example.com", "v=spf1 mx:down.example.com -all")
      .txt_record("exists.example.com", "v=spf1 exists:down.example.com -all")
      .txt_record("include.example.com", "v=spf1 include:down.example.com -all")
      .txt_record("exp.example.com", "v=spf1 -all exp=down.example.com");
  for (const char* domain : {"a", "mx", "exists", "include"}) {
    INFO(domain);
    const auto verdict = check(dns, "192.0.2.1", std::string("x@") + domain + ".example.com");
    CHECK(verdict.result == SpfResult::temperror);
    CHECK_THAT(verdict.problem, Catch::Contains("down.example.com"));
  }
  CHECK(check(dns, "192.0.2.1", "x@down.example.com").result == SpfResult::temperror);
  const auto exp = check(dns, "192.0.2.1", "x@exp.example.com");
  CHECK(exp.result == SpfResult::fail);
  CHECK(exp.explanation.empty());
}

TEST_CASE("SPF answers given synchronously do not deepen the stack", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("example.com", "v=spf1" + repeated("a:host.example.com", 10) + " -all")
      .address("host.example.com", "192.0.2.99");
  CHECK(check(dns, "192.0.2.1", "a@example.com").result == SpfResult::fail);
  // Every A query after the first is asked from the same depth as the first.
  REQUIRE(dns.stack_at_query.size() == 11);
  const auto [low, high] =
      std::minmax_element(dns.stack_at_query.begin() + 1, dns.stack_at_query.end());
  CHECK(*high - *low < 512);
}
