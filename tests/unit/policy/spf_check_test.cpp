// check_spf() as the SMTP session uses it: which identity is checked (RFC 7208 2.4, 4.3),
// domains that cannot have a record, explanations (6.2), and answers that arrive later.
#include <catch2/catch.hpp>

#include "policy/spf_test_dns.hpp"

using relayq::policy::SpfResult;
using relayq::policy::SpfVerdict;
using relayq::test::check;
using relayq::test::ip;
using relayq::test::SpfTestDns;

TEST_CASE("SPF checks the sender's domain, or postmaster@HELO for the null sender", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("example.com", "v=spf1 -all exp=why.example.com")
      .txt_record("helo.example.net", "v=spf1 -all exp=why.example.com")
      .txt_record("why.example.com", "%{s} (%{l} at %{o}, %{d})");
  const auto sender = check(dns, "192.0.2.1", "Someone@Example.COM", "helo.example.net");
  CHECK(sender.domain == "Example.COM");
  CHECK(sender.result == SpfResult::fail);
  CHECK(sender.explanation == "Someone@Example.COM (Someone at Example.COM, Example.COM)");
  const auto null_sender = check(dns, "192.0.2.1", "", "helo.example.net");
  CHECK(null_sender.domain == "helo.example.net");
  CHECK(null_sender.explanation ==
        "postmaster@helo.example.net (postmaster at helo.example.net, helo.example.net)");
  const auto no_local_part = check(dns, "192.0.2.1", "@example.com");
  CHECK(no_local_part.explanation ==
        "postmaster@example.com (postmaster at example.com, "
        "example.com)");
}

TEST_CASE("SPF gives none for domains that cannot have a record, without asking DNS", "[spf]") {
  const std::string long_label(64, 'a');
  for (const std::string& sender :
       std::vector<std::string>{"a@[192.0.2.1]", "a@localhost", "a@" + long_label + ".example.com",
                                "a@a..example.com", "a@example.123", "postmaster", "a@"}) {
    INFO(sender);
    SpfTestDns dns;
    const auto verdict = check(dns, "192.0.2.1", sender);
    CHECK(verdict.result == SpfResult::none);
    CHECK(verdict.problem == "not a valid domain name");
    CHECK(dns.queries.empty());
  }
  SpfTestDns dns;
  dns.txt_record("example.com", "v=spf1 +all");
  CHECK(check(dns, "192.0.2.1", "a@example.com.").result == SpfResult::pass);
  CHECK(check(dns, "192.0.2.1", "", "[192.0.2.1]").result == SpfResult::none);
}

TEST_CASE("SPF explanations: only for fail, from the record that failed", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("soft.example.com", "v=spf1 ~all exp=why.example.com")
      .txt_record("redirect.example.com", "v=spf1 exp=old.example.com redirect=target.example.com")
      .txt_record("target.example.com", "v=spf1 -all exp=why.example.com")
      .txt_record("include.example.com", "v=spf1 -include:inner.example.com exp=outer.example.com")
      .txt_record("inner.example.com", "v=spf1 +all exp=why.example.com")
      .txt_record("why.example.com", "not from %{d} at %{i}")
      .txt_record("old.example.com", "stale")
      .txt_record("outer.example.com", "outer says no")
      .txt_record("two.example.com", "v=spf1 -all exp=twice.example.com")
      .txt_record("twice.example.com", "one")
      .txt_record("twice.example.com", "two");
  const auto soft = check(dns, "192.0.2.1", "a@soft.example.com");
  CHECK(soft.result == SpfResult::softfail);
  CHECK(soft.explanation.empty());
  const auto redirect = check(dns, "192.0.2.1", "a@redirect.example.com");
  CHECK(redirect.result == SpfResult::fail);
  CHECK(redirect.explanation == "not from target.example.com at 192.0.2.1");
  const auto include = check(dns, "192.0.2.1", "a@include.example.com");
  CHECK(include.result == SpfResult::fail);
  CHECK(include.explanation == "outer says no");
  CHECK(check(dns, "192.0.2.1", "a@two.example.com").explanation.empty());
}

TEST_CASE("SPF include and redirect results", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("pass.example.com", "v=spf1 +all")
      .txt_record("fail.example.com", "v=spf1 -all")
      .txt_record("broken.example.com", "v=spf1 bogus")
      .txt_record("inc-pass.example.com", "v=spf1 include:pass.example.com -all")
      .txt_record("inc-fail.example.com", "v=spf1 include:fail.example.com ?all")
      .txt_record("inc-none.example.com", "v=spf1 include:nothing.example.com +all")
      .txt_record("inc-broken.example.com", "v=spf1 include:broken.example.com +all")
      .txt_record("redir-none.example.com", "v=spf1 redirect=nothing.example.com")
      .txt_record("redir-a.example.com", "v=spf1 redirect=host.example.com")
      .txt_record("host.example.com", "v=spf1 a -all")
      .address("host.example.com", "192.0.2.1")
      .address("redir-a.example.com", "192.0.2.2");
  CHECK(check(dns, "192.0.2.1", "a@inc-pass.example.com").result == SpfResult::pass);
  CHECK(check(dns, "192.0.2.1", "a@inc-fail.example.com").result == SpfResult::neutral);
  const auto none = check(dns, "192.0.2.1", "a@inc-none.example.com");
  CHECK(none.result == SpfResult::permerror);
  CHECK(none.problem == "inc-none.example.com: include:nothing.example.com has no SPF record");
  const auto broken = check(dns, "192.0.2.1", "a@inc-broken.example.com");
  CHECK(broken.result == SpfResult::permerror);
  CHECK(broken.problem == "broken.example.com: bad term 'bogus'");
  CHECK(check(dns, "192.0.2.1", "a@redir-none.example.com").result == SpfResult::permerror);
  // After a redirect, "a" means the new domain's addresses.
  CHECK(check(dns, "192.0.2.1", "a@redir-a.example.com").result == SpfResult::pass);
  CHECK(check(dns, "192.0.2.2", "a@redir-a.example.com").result == SpfResult::fail);
}

TEST_CASE("SPF asks for the client's address family and treats mapped IPv4 as IPv4", "[spf]") {
  SpfTestDns dns;
  dns.txt_record("example.com", "v=spf1 a -all")
      .address("example.com", "192.0.2.1")
      .address("example.com", "2001:db8::1");
  CHECK(check(dns, "2001:db8::1", "a@example.com").result == SpfResult::pass);
  CHECK(dns.queries.back() == "AAAA example.com");
  CHECK(check(dns, "::ffff:192.0.2.1", "a@example.com").result == SpfResult::pass);
  CHECK(dns.queries.back() == "A example.com");
}

TEST_CASE("SPF waits for answers that arrive later, and calls back once", "[spf]") {
  SpfTestDns dns;
  dns.hold_answers = true;
  dns.txt_record("example.com", "v=spf1 include:inner.example.com mx -all exp=why.example.com")
      .txt_record("inner.example.com", "v=spf1 a:host.example.com")
      .address("host.example.com", "192.0.2.99")
      .mx_record("example.com", 10, "mx1.example.com")
      .mx_record("example.com", 20, "mx2.example.com")
      .address("mx2.example.com", "192.0.2.1")
      .txt_record("why.example.com", "no");
  int calls = 0;
  SpfVerdict verdict;
  relayq::policy::check_spf(dns, {ip("192.0.2.7"), "a@example.com", "helo.example.com", ""},
                            [&](SpfVerdict result) {
                              ++calls;
                              verdict = std::move(result);
                            });
  CHECK(calls == 0);
  while (dns.release() > 0) {
  }
  CHECK(calls == 1);
  CHECK(verdict.result == SpfResult::fail);
  CHECK(verdict.explanation == "no");
  CHECK(check(dns, "192.0.2.1", "a@example.com").result == SpfResult::pass);
}
