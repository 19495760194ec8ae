// SPF record selection and syntax (RFC 7208 4.5, 4.6.1, 5, 6, 12), seen through check_spf:
// which TXT record is used, and which records are permerrors before anything is evaluated.
#include <catch2/catch.hpp>

#include "policy/spf_test_dns.hpp"

using relayq::policy::SpfResult;
using relayq::test::check;
using relayq::test::SpfTestDns;

namespace {

// The result for a client 192.0.2.1 and sender someone@example.com with `record` published.
SpfResult result_of(const std::string& record, std::string_view client = "192.0.2.1") {
  SpfTestDns dns;
  dns.txt_record("example.com", record)
      .address("example.com", "192.0.2.1")
      .address("example.com", "2001:db8::1")
      .txt_record("included.example.com", "v=spf1 ip4:192.0.2.1 -all");
  return check(dns, client, "someone@example.com").result;
}

}  // namespace

TEST_CASE("SPF selects the one TXT record that starts with v=spf1", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("one.example", "google-site-verification=abc")
      .txt_record("one.example", "V=SPF1 +all")
      .txt_record("two.example", "v=spf1 +all")
      .txt_record("two.example", "v=spf1 -all")
      .txt_record("joined.example", "v=spf1mx")
      .txt_record("longer.example", "v=spf10 +all")
      .txt_record("bare.example", "v=spf1");
  CHECK(check(dns, "192.0.2.1", "a@one.example").result == SpfResult::pass);
  const auto two = check(dns, "192.0.2.1", "a@two.example");
  CHECK(two.result == SpfResult::permerror);
  CHECK(two.problem == "two.example: 2 SPF records");
  const auto joined = check(dns, "192.0.2.1", "a@joined.example");
  CHECK(joined.result == SpfResult::none);
  CHECK(joined.problem == "joined.example: no SPF record");
  CHECK(check(dns, "192.0.2.1", "a@longer.example").result == SpfResult::none);
  CHECK(check(dns, "192.0.2.1", "a@bare.example").result == SpfResult::neutral);
  CHECK(check(dns, "192.0.2.1", "a@nowhere.example").result == SpfResult::none);
}

TEST_CASE("SPF qualifiers give their results, and the first match wins", "[spf]") {
  CHECK(result_of("v=spf1 ip4:192.0.2.1 -all") == SpfResult::pass);
  CHECK(result_of("v=spf1 -ip4:192.0.2.1 +all") == SpfResult::fail);
  CHECK(result_of("v=spf1 ~ip4:192.0.2.1") == SpfResult::softfail);
  CHECK(result_of("v=spf1 ?ip4:192.0.2.1") == SpfResult::neutral);
  CHECK(result_of("v=spf1 ip4:192.0.2.2") == SpfResult::neutral);
  CHECK(result_of("v=spf1   ip4:192.0.2.1   -all  ") == SpfResult::pass);
  CHECK(result_of("v=spf1 IP4:192.0.2.1 -ALL") == SpfResult::pass);
  CHECK(result_of("v=spf1 include:included.example.com -all") == SpfResult::pass);
}

TEST_CASE("SPF networks: CIDR lengths, families and strict address syntax", "[spf]") {
  CHECK(result_of("v=spf1 ip4:192.0.2.0/24 -all") == SpfResult::pass);
  CHECK(result_of("v=spf1 ip4:192.0.3.0/24 -all") == SpfResult::fail);
  CHECK(result_of("v=spf1 ip4:10.0.0.0/0 -all") == SpfResult::pass);
  CHECK(result_of("v=spf1 ip6:::/0 -all") == SpfResult::fail);  // IPv4 client
  CHECK(result_of("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::25") == SpfResult::pass);
  CHECK(result_of("v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::25") == SpfResult::fail);
  CHECK(result_of("v=spf1 ip4:192.0.2.1 -all", "::ffff:192.0.2.1") == SpfResult::pass);
  CHECK(result_of("v=spf1 a/24 -all") == SpfResult::pass);
  CHECK(result_of("v=spf1 a:example.com/32//64 -all", "2001:db8::ff") == SpfResult::pass);
  CHECK(result_of("v=spf1 a//128 -all", "2001:db8::ff") == SpfResult::fail);
  for (const char* bad :
       {"v=spf1 ip4:192.0.2.1/33", "v=spf1 ip4:192.0.2.1/024", "v=spf1 ip4:192.0.02.1",
        "v=spf1 ip4:192.0.2", "v=spf1 ip4:192.0.2.1:25", "v=spf1 ip4:192.0.2.1//32", "v=spf1 ip4",
        "v=spf1 ip6:2001:db8::/129", "v=spf1 ip6::2001::1", "v=spf1 a/33", "v=spf1 a//129",
        "v=spf1 a/24/64", "v=spf1 mx/", "v=spf1 ptr/24"}) {
    INFO(bad);
    CHECK(result_of(bad) == SpfResult::permerror);
  }
}

TEST_CASE("SPF syntax errors anywhere in the record are permerrors", "[spf]") {
  for (const char* bad : {
           "v=spf1 ip4:192.0.2.1 -all moo",  // unknown mechanism, after a match
           "v=spf1 -all.",
           "v=spf1 all:x",
           "v=spf1 -all/8",  // all takes nothing
           "v=spf1 include",
           "v=spf1 include:",
           "v=spf1 exists",
           "v=spf1 a:",
           "v=spf1 include:example.com/24",  // no CIDR on include
           "v=spf1 a:museum",
           "v=spf1 a:example.123",  // toplabel rules
           "v=spf1 a:example.-com",
           "v=spf1 a:192.0.2.1",           //
           "v=spf1 redirect:example.org",  // a modifier is name=value
           "v=spf1 1up=x",
           "v=spf1 =x",
           "v=spf1 x.y/z=1",  // modifier names
           "v=spf1 exp=",
           "v=spf1 redirect=",
           "v=spf1 exp=-all",                               // modifier values
           "v=spf1 exp=a.example exp=b.example",            // twice
           "v=spf1 redirect=a.example redirect=a.example",  //
           "v=spf1 unknown=%x",                             // bad macro in any modifier
           "v=spf1 a:%{x}.example.com",
           "v=spf1 a:%{d0}.example.com",
           "v=spf1 exists:%{r}.example.com",  // r, c and t only in explanations
           "v=spf1 a:\xC3\xA9.example.com",   // 7-bit ASCII only
           "v=spf1 a:example.com\tptr",       // spaces alone separate terms
       }) {
    INFO(bad);
    CHECK(result_of(bad) == SpfResult::permerror);
  }
}

TEST_CASE("SPF accepts what the grammar allows", "[spf]") {
  CHECK(result_of("v=spf1 ip4:192.0.2.1 moo.cow-far_out=man:dog/cat -all") == SpfResult::pass);
  CHECK(result_of("v=spf1 default=+ -ip4:192.0.2.1") == SpfResult::fail);
  CHECK(result_of("v=spf1 a:%{d} -all") == SpfResult::pass);                   // ends in a macro
  CHECK(result_of("v=spf1 a:example.com. -all") == SpfResult::pass);           // trailing dot
  CHECK(result_of("v=spf1 a:x.xn--zckzah ip4:192.0.2.1") == SpfResult::pass);  // IDN toplabel
  CHECK(result_of("v=spf1 a:x.1-2 ip4:192.0.2.1") == SpfResult::pass);
  // "all" matches first, so the redirect is never followed.
  CHECK(result_of("v=spf1 -all redirect=included.example.com") == SpfResult::fail);
}

TEST_CASE("SPF result names", "[spf]") {
  using relayq::policy::to_string;
  CHECK(to_string(SpfResult::none) == "none");
  CHECK(to_string(SpfResult::neutral) == "neutral");
  CHECK(to_string(SpfResult::pass) == "pass");
  CHECK(to_string(SpfResult::fail) == "fail");
  CHECK(to_string(SpfResult::softfail) == "softfail");
  CHECK(to_string(SpfResult::temperror) == "temperror");
  CHECK(to_string(SpfResult::permerror) == "permerror");
}
