// Unit tests of DMARC: the organizational domain, the policy record, and the evaluation over a
// map of TXT answers.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/dmarc.hpp"

using relayq::dns::Status;
using relayq::dns::TextAnswer;
using relayq::policy::DmarcInput;
using relayq::policy::DmarcPolicy;
using relayq::policy::DmarcResult;
using relayq::policy::DmarcTxtLookup;
using relayq::policy::DmarcVerdict;
using relayq::policy::evaluate_dmarc;
using relayq::policy::is_dmarc_record;
using relayq::policy::organizational_domain;
using relayq::policy::parse_dmarc_record;

namespace {

// TXT answers by name; a name not in the map is NXDOMAIN. Records the names asked for.
struct TxtZone {
  std::map<std::string, TextAnswer> answers;
  std::vector<std::string> asked;

  void add(const std::string& name, std::vector<std::string> records) {
    answers[name] = TextAnswer{Status::ok, std::move(records), ""};
  }
  DmarcTxtLookup lookup() {
    return [this](const std::string& name, std::function<void(const TextAnswer&)> done) {
      asked.push_back(name);
      const auto found = answers.find(name);
      done(found != answers.end() ? found->second : TextAnswer{Status::nxdomain, {}, "NXDOMAIN"});
    };
  }
};

DmarcVerdict evaluate(TxtZone& zone, const DmarcInput& input) {
  std::optional<DmarcVerdict> verdict;
  int calls = 0;
  evaluate_dmarc(input, zone.lookup(), [&](DmarcVerdict v) {
    ++calls;
    verdict = std::move(v);
  });
  REQUIRE(calls == 1);
  return *verdict;
}

DmarcInput from(const std::string& domain) {
  DmarcInput input;
  input.from_domain = domain;
  return input;
}

DmarcInput with_spf(DmarcInput input, const std::string& domain) {
  input.spf_domain = domain;
  input.spf_pass = true;
  return input;
}

DmarcInput with_dkim(DmarcInput input, const std::string& domain) {
  input.dkim_pass_domains.push_back(domain);
  return input;
}

}  // namespace

TEST_CASE("the organizational domain comes from the public suffix list", "[dmarc]") {
  CHECK(organizational_domain("example.com") == "example.com");
  CHECK(organizational_domain("a.b.c.example.com") == "example.com");
  CHECK(organizational_domain("a.b.example.co.uk") == "example.co.uk");
  CHECK(organizational_domain("Mail.Example.COM.") == "example.com");
  // A public suffix, or a name under none the list knows, is its own.
  CHECK(organizational_domain("co.uk") == "co.uk");
  CHECK(organizational_domain("com") == "com");
  CHECK(organizational_domain("localhost") == "localhost");
  CHECK(organizational_domain("").empty());
}

TEST_CASE("DMARC records are told apart from other TXT records", "[dmarc]") {
  CHECK(is_dmarc_record("v=DMARC1; p=none"));
  CHECK(is_dmarc_record("v=DMARC1"));
  CHECK(is_dmarc_record(" v = DMARC1 ;p=reject"));
  CHECK(is_dmarc_record("v=DMARC1 p=none"));  // a DMARC record, but an invalid one
  CHECK_FALSE(is_dmarc_record("v=spf1 -all"));
  CHECK_FALSE(is_dmarc_record("p=reject; v=DMARC1"));
  CHECK_FALSE(is_dmarc_record("v=DMARC10; p=none"));
  CHECK_FALSE(is_dmarc_record("v=dmarc1; p=none"));
  CHECK_FALSE(is_dmarc_record(""));
}

TEST_CASE("DMARC record: a valid record's tags", "[dmarc]") {
  const auto record = parse_dmarc_record(
      "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=25; "
      "rua=mailto:agg@example.com,mailto:big@example.net!10m, bad uri; ruf=mailto:f@example.com; "
      "fo=1; future=tag;");
  REQUIRE(record);
  CHECK(record->policy == DmarcPolicy::quarantine);
  CHECK(record->subdomain_policy == DmarcPolicy::reject);
  CHECK(record->strict_dkim);
  CHECK_FALSE(record->strict_spf);
  CHECK(record->percent == 25);
  CHECK(record->aggregate_report_uris ==
        std::vector<std::string>{"mailto:agg@example.com", "mailto:big@example.net!10m"});
  CHECK(record->failure_report_uris == std::vector<std::string>{"mailto:f@example.com"});
}

TEST_CASE("DMARC record: defaults, case and repeated tags", "[dmarc]") {
  const auto record = parse_dmarc_record("v=DMARC1;P=Reject");
  REQUIRE(record);
  CHECK(record->policy == DmarcPolicy::reject);
  CHECK_FALSE(record->subdomain_policy);
  CHECK_FALSE(record->strict_dkim);
  CHECK_FALSE(record->strict_spf);
  CHECK(record->percent == 100);
  CHECK(record->aggregate_report_uris.empty());
  // Bad optional tags keep their defaults; of a repeated tag the first counts.
  const auto odd = parse_dmarc_record("v=DMARC1; p=none; p=reject; adkim=x; aspf=S; pct=101");
  REQUIRE(odd);
  CHECK(odd->policy == DmarcPolicy::none);
  CHECK_FALSE(odd->strict_dkim);
  CHECK(odd->strict_spf);
  CHECK(odd->percent == 100);
  CHECK(parse_dmarc_record("v=DMARC1; p=none; pct=0")->percent == 0);
  CHECK(parse_dmarc_record("v=DMARC1; p=none; pct=-5")->percent == 100);
}

TEST_CASE("DMARC record: what gives no policy", "[dmarc]") {
  CHECK_FALSE(parse_dmarc_record("p=reject; v=DMARC1"));  // v= not first
  CHECK_FALSE(parse_dmarc_record("v=DMARC1"));            // no p=
  CHECK_FALSE(parse_dmarc_record("v=DMARC1; p=block"));
  CHECK_FALSE(parse_dmarc_record("v=DMARC1; p=reject; sp=maybe"));
  CHECK_FALSE(parse_dmarc_record("v=DMARC1 p=reject"));  // the missing ';' makes v= wrong
  CHECK_FALSE(parse_dmarc_record("v=DMARC1; p=block; rua=not a uri, mailto:, :x, 1a:b"));
  // ... unless it asks for aggregate reports (RFC 7489 6.6.3 step 6): then p=none.
  const auto reports = parse_dmarc_record("v=DMARC1; p=block; sp=reject; rua=mailto:r@a.test");
  REQUIRE(reports);
  CHECK(reports->policy == DmarcPolicy::none);
  CHECK_FALSE(reports->subdomain_policy);
  CHECK(parse_dmarc_record("v=DMARC1; sp=bad; p=reject; rua=mailto:r@a.test")->policy ==
        DmarcPolicy::none);
}

TEST_CASE("DMARC: the record at the From domain, else the organizational domain", "[dmarc]") {
  TxtZone zone;
  zone.add("_dmarc.example.com", {"v=DMARC1; p=reject; sp=quarantine; pct=50"});

  SECTION("at the From domain: p= applies") {
    const auto verdict = evaluate(zone, with_spf(from("Example.COM"), "example.com"));
    CHECK(zone.asked == std::vector<std::string>{"_dmarc.example.com"});
    CHECK(verdict.result == DmarcResult::pass);
    CHECK(verdict.from_domain == "example.com");
    CHECK(verdict.policy == DmarcPolicy::reject);
    CHECK(verdict.percent == 50);
    CHECK(verdict.problem.empty());
  }
  SECTION("a subdomain falls back to the organizational domain: sp= applies") {
    const auto verdict = evaluate(zone, from("mail.news.example.com"));
    CHECK(zone.asked ==
          std::vector<std::string>{"_dmarc.mail.news.example.com", "_dmarc.example.com"});
    CHECK(verdict.result == DmarcResult::fail);
    CHECK(verdict.policy == DmarcPolicy::quarantine);
  }
  SECTION("without sp=, p= applies to subdomains") {
    zone.add("_dmarc.example.com", {"v=DMARC1; p=reject"});
    CHECK(evaluate(zone, from("news.example.com")).policy == DmarcPolicy::reject);
  }
  SECTION("other TXT records at the From domain do not stop the fallback") {
    zone.add("_dmarc.news.example.com", {"v=spf1 -all", "hello"});
    CHECK(evaluate(zone, from("news.example.com")).policy == DmarcPolicy::quarantine);
    CHECK(zone.asked.size() == 2);
  }
  SECTION("a record at the From domain is used as it is") {
    zone.add("_dmarc.news.example.com", {"v=DMARC1; p=none"});
    const auto verdict = evaluate(zone, from("news.example.com"));
    CHECK(zone.asked == std::vector<std::string>{"_dmarc.news.example.com"});
    CHECK(verdict.result == DmarcResult::fail);
    CHECK(verdict.policy == DmarcPolicy::none);
  }
}

TEST_CASE("DMARC: no record, several records, an invalid record", "[dmarc]") {
  TxtZone zone;
  SECTION("no record anywhere: none") {
    const auto verdict = evaluate(zone, with_spf(from("a.example.org"), "a.example.org"));
    CHECK(zone.asked == std::vector<std::string>{"_dmarc.a.example.org", "_dmarc.example.org"});
    CHECK(verdict.result == DmarcResult::none);
    CHECK(verdict.policy == DmarcPolicy::none);
    CHECK(verdict.problem == "no record");
  }
  SECTION("the organizational domain is asked once") {
    zone.answers["_dmarc.example.org"] = TextAnswer{Status::nodata, {}, "NODATA"};
    CHECK(evaluate(zone, from("example.org")).result == DmarcResult::none);
    CHECK(zone.asked == std::vector<std::string>{"_dmarc.example.org"});
  }
  SECTION("several records: none, and no fallback") {
    zone.add("_dmarc.example.org", {"v=DMARC1; p=reject"});
    zone.add("_dmarc.a.example.org", {"v=DMARC1; p=reject", "v=DMARC1; p=none"});
    const auto verdict = evaluate(zone, from("a.example.org"));
    CHECK(zone.asked.size() == 1);
    CHECK(verdict.result == DmarcResult::none);
    CHECK(verdict.policy == DmarcPolicy::none);
    CHECK(verdict.problem == "several records");
  }
  SECTION("an invalid record: permerror, no policy") {
    zone.add("_dmarc.example.org", {"v=DMARC1; p=nonsense"});
    const auto verdict = evaluate(zone, with_spf(from("example.org"), "example.org"));
    CHECK(verdict.result == DmarcResult::permerror);
    CHECK(verdict.policy == DmarcPolicy::none);
    CHECK(verdict.problem == "invalid record");
  }
}

TEST_CASE("DMARC: a temporary DNS failure is temperror", "[dmarc]") {
  TxtZone zone;
  zone.answers["_dmarc.example.net"] = TextAnswer{Status::temporary, {}, "timeout"};
  SECTION("at the From domain: no fallback") {
    zone.add("_dmarc.net", {"v=DMARC1; p=reject"});
    const auto verdict = evaluate(zone, from("example.net"));
    CHECK(verdict.result == DmarcResult::temperror);
    CHECK(verdict.problem == "DNS: timeout");
    CHECK(zone.asked.size() == 1);
  }
  SECTION("at the organizational domain") {
    const auto verdict = evaluate(zone, from("www.example.net"));
    CHECK(verdict.result == DmarcResult::temperror);
    CHECK(zone.asked.size() == 2);
  }
}

TEST_CASE("DMARC: relaxed and strict alignment of SPF and DKIM", "[dmarc]") {
  TxtZone zone;
  const auto relaxed = "v=DMARC1; p=reject";
  const auto strict = "v=DMARC1; p=reject; adkim=s; aspf=s";

  SECTION("relaxed: the same organizational domain aligns") {
    zone.add("_dmarc.example.com", {relaxed});
    CHECK(evaluate(zone, with_spf(from("example.com"), "bounce.example.com")).result ==
          DmarcResult::pass);
    CHECK(evaluate(zone, with_dkim(from("news.example.com"), "Example.com.")).result ==
          DmarcResult::pass);
    CHECK(evaluate(zone, with_spf(from("example.com"), "example.net")).result == DmarcResult::fail);
    CHECK(evaluate(zone, with_dkim(from("example.com"), "example.com.evil.test")).result ==
          DmarcResult::fail);
  }
  SECTION("strict: only the same domain aligns") {
    zone.add("_dmarc.example.com", {strict});
    CHECK(evaluate(zone, with_spf(from("example.com"), "bounce.example.com")).result ==
          DmarcResult::fail);
    CHECK(evaluate(zone, with_spf(from("example.com"), "EXAMPLE.com")).result == DmarcResult::pass);
    CHECK(evaluate(zone, with_dkim(from("example.com"), "mail.example.com")).result ==
          DmarcResult::fail);
    CHECK(evaluate(zone, with_dkim(with_dkim(from("example.com"), "other.test"), "example.com"))
              .result == DmarcResult::pass);
  }
  SECTION("the modes are separate") {
    zone.add("_dmarc.example.com", {"v=DMARC1; p=reject; aspf=s"});
    CHECK(evaluate(zone, with_spf(from("example.com"), "bounce.example.com")).result ==
          DmarcResult::fail);
    CHECK(evaluate(zone, with_dkim(from("example.com"), "mail.example.com")).result ==
          DmarcResult::pass);
  }
  SECTION("an aligned SPF domain that did not pass counts for nothing") {
    zone.add("_dmarc.example.com", {relaxed});
    DmarcInput input = from("example.com");
    input.spf_domain = "example.com";
    const auto verdict = evaluate(zone, input);
    CHECK(verdict.result == DmarcResult::fail);
    CHECK(verdict.policy == DmarcPolicy::reject);
    CHECK(verdict.problem == "no aligned SPF or DKIM pass");
  }
  SECTION("across a public suffix nothing is relaxed") {
    zone.add("_dmarc.a.co.uk", {relaxed});
    CHECK(evaluate(zone, with_spf(from("a.co.uk"), "b.co.uk")).result == DmarcResult::fail);
  }
}

TEST_CASE("DMARC: without exactly one usable From domain, permerror", "[dmarc]") {
  TxtZone zone;
  const auto no_from = evaluate(zone, with_spf(from(""), "example.com"));
  CHECK(no_from.result == DmarcResult::permerror);
  CHECK(no_from.problem == "not exactly one From domain");
  CHECK(evaluate(zone, from("[192.0.2.1]")).result == DmarcResult::permerror);
  CHECK(evaluate(zone, from("a..example.com")).result == DmarcResult::permerror);
  CHECK(zone.asked.empty());
}

TEST_CASE("DMARC: answers that arrive later, after the lookup object is gone", "[dmarc]") {
  std::deque<std::function<void()>> pending;
  std::vector<std::string> asked;
  std::optional<DmarcVerdict> verdict;
  int calls = 0;
  evaluate_dmarc(
      with_dkim(from("www.example.com"), "example.com"),
      [&](const std::string& name, std::function<void(const TextAnswer&)> done) {
        asked.push_back(name);
        pending.push_back([name, done] {
          done(name == "_dmarc.example.com" ? TextAnswer{Status::ok, {"v=DMARC1; p=reject"}, ""}
                                            : TextAnswer{Status::nxdomain, {}, "NXDOMAIN"});
        });
      },
      [&](DmarcVerdict v) {
        ++calls;
        verdict = std::move(v);
      });
  CHECK(calls == 0);
  while (!pending.empty()) {
    auto next = std::move(pending.front());
    pending.pop_front();
    next();
  }
  CHECK(asked == std::vector<std::string>{"_dmarc.www.example.com", "_dmarc.example.com"});
  REQUIRE(calls == 1);
  CHECK(verdict->result == DmarcResult::pass);
  CHECK(verdict->policy == DmarcPolicy::reject);
}

TEST_CASE("DMARC words for Authentication-Results and logs", "[dmarc]") {
  using relayq::policy::to_string;
  CHECK(to_string(DmarcResult::none) == "none");
  CHECK(to_string(DmarcResult::pass) == "pass");
  CHECK(to_string(DmarcResult::fail) == "fail");
  CHECK(to_string(DmarcResult::temperror) == "temperror");
  CHECK(to_string(DmarcResult::permerror) == "permerror");
  CHECK(to_string(DmarcPolicy::none) == "none");
  CHECK(to_string(DmarcPolicy::quarantine) == "quarantine");
  CHECK(to_string(DmarcPolicy::reject) == "reject");
}
