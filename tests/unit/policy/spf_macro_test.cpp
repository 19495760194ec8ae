// SPF macros (RFC 7208 section 7): the examples of 7.4, transformers and delimiters, URL
// escaping, %{p}, the explanation-only letters and the truncation of long names; seen through
// the names check_spf asks for and the explanations it returns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>

#include "policy/spf_test_dns.hpp"

using relayq::policy::SpfResult;
using relayq::test::check;
using relayq::test::SpfTestDns;

namespace {

const std::string kSender = "strong-bad@email.example.com";

// The A query that "exists:<spec>" makes for the sender of 7.4.
std::string exists_query(const std::string& spec, std::string_view client = "192.0.2.3") {
  SpfTestDns dns;
  dns.txt_record("email.example.com", "v=spf1 exists:" + spec + " -all");
  const auto verdict = check(dns, client, kSender);
  REQUIRE(verdict.result == SpfResult::fail);
  REQUIRE(dns.queries.size() == 2);
  return dns.queries[1];
}

// The explanation that "exp=why.example.com" with `text` there gives for a fail.
std::string explanation(const std::string& text, std::string sender = kSender,
                        std::string_view client = "192.0.2.3", std::string helo = "mx.example.org",
                        std::string receiver = "mx.receiver.example") {
  SpfTestDns dns;
  dns.txt_record("email.example.com", "v=spf1 -all exp=why.example.com")
      .txt_record("why.example.com", text);
  const auto verdict = check(dns, client, std::move(sender), std::move(helo), std::move(receiver));
  REQUIRE(verdict.result == SpfResult::fail);
  return verdict.explanation;
}

}  // namespace

TEST_CASE("SPF macro letters and transformers expand as RFC 7208 7.4 shows", "[spf]") {
  CHECK(explanation("%{s} %{o} %{d} %{d4} %{d3} %{d2} %{d1} %{dr} %{d2r}") ==
        "strong-bad@email.example.com email.example.com email.example.com email.example.com "
        "email.example.com example.com com com.example.email example.email");
  CHECK(explanation("%{l} %{l-} %{lr} %{lr-} %{l1r-}") ==
        "strong-bad strong.bad strong-bad bad.strong strong");
  CHECK(exists_query("%{ir}.%{v}._spf.%{d2}") == "A 3.2.0.192.in-addr._spf.example.com");
  CHECK(exists_query("%{lr-}.lp._spf.%{d2}") == "A bad.strong.lp._spf.example.com");
  CHECK(exists_query("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") ==
        "A bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  CHECK(exists_query("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}") ==
        "A 3.2.0.192.in-addr.strong.lp._spf.example.com");
  CHECK(exists_query("%{d2}.trusted-domains.example.net") ==
        "A example.com.trusted-domains.example.net");
  CHECK(exists_query("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01") ==
        "A 1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("SPF macro delimiters split on each listed character", "[spf]") {
  CHECK(explanation("%{l2r+-}", "foo-bar+zip+quux@email.example.com") == "bar.foo");
  CHECK(explanation("%{l=_}", "a=b_c.d@email.example.com") == "a.b.c.d");
  CHECK(explanation("%{d99}") == "email.example.com");
}

TEST_CASE("SPF macro escapes and upper-case letters", "[spf]") {
  CHECK(explanation("100%% sure%_at%-all") == "100% sure at%20all");
  CHECK(explanation("l=%{L}", "~jack&jill=up-a_b3.c@email.example.com") ==
        "l=~jack%26jill%3Dup-a_b3.c");
  CHECK(exists_query("%{H}.example.com") == "A mail.example.com.example.com");
}

TEST_CASE("SPF explanation-only letters: c, r and t", "[spf]") {
  CHECK(explanation("%{c} %{i} %{v}", kSender, "2001:db8::cb01") ==
        "2001:db8::cb01 2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1 ip6");
  CHECK(explanation("%{c} is %{i} via %{v}") == "192.0.2.3 is 192.0.2.3 via in-addr");
  CHECK(explanation("%{r}") == "mx.receiver.example");
  CHECK(explanation("%{r}", kSender, "192.0.2.3", "mx.example.org", "") == "unknown");
  CHECK(explanation("%{h}") == "mx.example.org");
  const auto now = static_cast<long long>(std::time(nullptr));
  const long long stamp = std::stoll(explanation("%{t}"));
  CHECK(stamp >= now - 5);
  CHECK(stamp <= now + 5);
}

TEST_CASE("SPF explanation text with a bad macro or several records is dropped", "[spf]") {
  CHECK(explanation("The %{x}-files") == "");
  CHECK(explanation("50% off") == "");
  CHECK(explanation("caf\xC3\xA9") == "");  // 7-bit ASCII only
}

TEST_CASE("SPF %{p} is a validated PTR name, preferably under <domain>", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("email.example.com", "v=spf1 -all exp=why.example.com")
      .txt_record("why.example.com", "from %{p}")
      .ptr_record("192.0.2.3", "other.example.net")
      .ptr_record("192.0.2.3", "mx.email.example.com")
      .address("other.example.net", "192.0.2.3")
      .address("mx.email.example.com", "192.0.2.3")
      .ptr_record("192.0.2.4", "liar.example.net")
      .address("liar.example.net", "192.0.2.99")
      .ptr_record("192.0.2.5", "only.example.net")
      .address("only.example.net", "192.0.2.5");
  CHECK(check(dns, "192.0.2.3", kSender).explanation == "from mx.email.example.com");
  CHECK(check(dns, "192.0.2.4", kSender).explanation == "from unknown");
  CHECK(check(dns, "192.0.2.5", kSender).explanation == "from only.example.net");
  CHECK(check(dns, "192.0.2.6", kSender).explanation == "from unknown");
}

TEST_CASE("SPF expanded names: long ones lose labels on the left, broken ones match nothing",
          "[spf]") {
  const std::string label(60, 'x');
  SpfTestDns dns;
  dns.txt_record("email.example.com", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.example.com -all");
  CHECK(check(dns, "192.0.2.3", label + "@email.example.com").result == SpfResult::fail);
  REQUIRE(dns.queries.size() == 2);
  CHECK(dns.queries[1] == "A " + label + "." + label + "." + label + ".example.com");

  SpfTestDns empty_label;
  empty_label.txt_record("email.example.com", "v=spf1 exists:%{h}.example.com -all");
  CHECK(check(empty_label, "192.0.2.3", kSender, "a..b").result == SpfResult::fail);
  CHECK(empty_label.queries.size() == 1);  // only the TXT: no query for a..b.example.com
}
