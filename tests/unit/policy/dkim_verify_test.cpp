// Unit tests of DKIM verification: the RFC 8463 example as python3-dkim ships it (Ed25519 and RSA,
// data/README.md), which key records a message needs, and how key answers and malformed
// signatures become results. Runs on the test thread only.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "policy/dkim.hpp"

using relayq::dns::Status;
using relayq::dns::TextAnswer;
using relayq::policy::dkim_key_names;
using relayq::policy::dkim_record_key;
using relayq::policy::dkim_verify;
using relayq::policy::DkimKeyRecords;
using relayq::policy::DkimResult;
using relayq::policy::DkimSignatureResult;

namespace {

constexpr const char* kEd25519Name = "brisbane._domainkey.football.example.com";
constexpr const char* kRsaName = "test._domainkey.football.example.com";
// RFC 8463 Appendix A.2.
constexpr const char* kEd25519Record =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
// python3-dkim's tests/data/test.txt: the 1024-bit key of the "test" signature.
constexpr const char* kRsaRecord =
    "v=DKIM1; g=*; k=rsa; "
    "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
    "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/"
    "8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+"
    "2kryOTIKT+l/K4w3QIDAQAB";

// data/rfc6376.signed.msg, found next to this file.
std::string example_message() {
  std::ifstream file(std::filesystem::path(__FILE__).parent_path() / "data" / "rfc6376.signed.msg",
                     std::ios::binary);
  REQUIRE(file);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TextAnswer txt(std::vector<std::string> records) {
  return {Status::ok, std::move(records), ""};
}

DkimKeyRecords example_keys() {
  return {{kEd25519Name, txt({kEd25519Record})}, {kRsaName, txt({kRsaRecord})}};
}

// `message` with the first `from` replaced by `to`.
std::string replaced(std::string message, const std::string& from, const std::string& to) {
  const auto at = message.find(from);
  REQUIRE(at != std::string::npos);
  return message.replace(at, from.size(), to);
}

// `message` with `field` (ending in CRLF) inserted before the field that starts with `before`.
std::string inserted(const std::string& message, const std::string& before,
                     const std::string& field) {
  return replaced(message, before, field + before);
}

std::vector<DkimResult> results_of(const std::vector<DkimSignatureResult>& results) {
  std::vector<DkimResult> values;
  for (const auto& result : results) values.push_back(result.result);
  return values;
}

constexpr const char* kPlainMessage =
    "Received: from a.example ([192.0.2.1]) by mx.example; Fri, 11 Jul 2003 21:00:40 -0700\r\n"
    "From: joe@football.example.com\r\nSubject: unsigned\r\n\r\nHi.\r\n";

}  // namespace

TEST_CASE("dkim_verify: the RFC 8463 example passes with both its signatures", "[dkim]") {
  const std::string message = example_message();
  const auto results = dkim_verify(message, example_keys());
  REQUIRE(results.size() == 2);
  CHECK(results[0].result == DkimResult::pass);
  CHECK(results[0].reason.empty());
  CHECK(results[0].domain == "football.example.com");
  CHECK(results[0].selector == "brisbane");
  CHECK(results[0].algorithm == "ed25519-sha256");
  CHECK(results[0].b_prefix == "9/dsDChY");
  CHECK(results[1].result == DkimResult::pass);
  CHECK(results[1].selector == "test");
  CHECK(results[1].algorithm == "rsa-sha256");
  CHECK(results[1].b_prefix == "icKcLSEZ");

  SECTION("one body byte changed: both fail on the body hash") {
    const auto changed = dkim_verify(replaced(message, "hungry", "Hungry"), example_keys());
    CHECK(results_of(changed) == std::vector{DkimResult::fail, DkimResult::fail});
    CHECK(changed[0].reason == "body hash mismatch");
    CHECK(changed[1].reason == "body hash mismatch");
  }
  SECTION("a signed header changed: both fail on the signature") {
    const auto changed = dkim_verify(replaced(message, "dinner", "lunch"), example_keys());
    CHECK(results_of(changed) == std::vector{DkimResult::fail, DkimResult::fail});
    CHECK(changed[0].reason == "signature verification failed");
  }
  SECTION("without a From: field (libopendkim would stop at it by default): both fail") {
    const auto changed = dkim_verify(
        replaced(message, "From: Joe SixPack <joe@football.example.com>\r\n", ""), example_keys());
    CHECK(results_of(changed) == std::vector{DkimResult::fail, DkimResult::fail});
  }
  SECTION("headers no signature covers may be added on the way") {
    const std::string relayed =
        "Received: from mx.example by relay.example; Fri, 11 Jul 2003 21:01:00 -0700\r\n"
        "X-Spam: no\r\n" +
        message;
    CHECK(results_of(dkim_verify(relayed, example_keys())) ==
          std::vector{DkimResult::pass, DkimResult::pass});
  }
}

TEST_CASE("dkim_verify: key record answers become results", "[dkim]") {
  const std::string message = example_message();
  DkimKeyRecords keys = example_keys();

  SECTION("a name not fetched, or a failed lookup, is a temporary error") {
    keys.erase(kRsaName);
    keys[kEd25519Name] = {Status::temporary, {}, "timeout"};
    const auto results = dkim_verify(message, keys);
    CHECK(results_of(results) == std::vector{DkimResult::temperror, DkimResult::temperror});
    CHECK(results[0].reason == "key lookup failed: timeout");
    CHECK(results[1].reason == "key not fetched");
  }
  SECTION("no record is a permanent error; the other signature still passes") {
    keys[kRsaName] = {GENERATE(Status::nxdomain, Status::nodata), {}, ""};
    const auto results = dkim_verify(message, keys);
    CHECK(results_of(results) == std::vector{DkimResult::pass, DkimResult::permerror});
    CHECK(results[1].reason == "no key");
  }
  SECTION("a revoked key (empty p=)") {
    keys[kEd25519Name] = txt({"v=DKIM1; k=ed25519; p="});
    const auto results = dkim_verify(message, keys);
    CHECK(results_of(results) == std::vector{DkimResult::permerror, DkimResult::pass});
    CHECK(results[0].reason == "key revoked");
  }
  SECTION("several records at the name") {
    keys[kRsaName] = txt({kRsaRecord, kRsaRecord});
    const auto results = dkim_verify(message, keys);
    CHECK(results[1].result == DkimResult::permerror);
    CHECK(results[1].reason == "multiple key records");
  }
  SECTION("another key of the right type") {
    keys[kEd25519Name] =
        txt({"v=DKIM1; k=ed25519; p=yi50DjK5O9pqbFpNHklsv9lqaS0ArSYu02qp1S0DW1Y="});
    const auto results = dkim_verify(message, keys);
    CHECK(results[0].result == DkimResult::fail);
    CHECK(results[0].reason == "signature verification failed");
  }
  SECTION("a record that is not a key") {
    keys[kRsaName] = txt({"v=spf1 -all"});
    CHECK(dkim_verify(message, keys)[1].result == DkimResult::permerror);
  }
}

TEST_CASE("dkim_verify: malformed signatures are neutral and do not shift the others", "[dkim]") {
  const std::string message = example_message();
  const std::string second_signature = "DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple;";

  SECTION("tags relayq cannot read") {
    const auto results = dkim_verify(
        inserted(message, second_signature, "DKIM-Signature: v=1;; d=x.example; s=y\r\n"),
        example_keys());
    CHECK(results_of(results) ==
          std::vector{DkimResult::pass, DkimResult::neutral, DkimResult::pass});
    CHECK(results[1].reason == "malformed tag list");
  }
  SECTION("tags libopendkim refuses (no h=, no b=)") {
    const auto results =
        dkim_verify(inserted(message, second_signature,
                             "DKIM-Signature: v=1; a=rsa-sha256; d=x.example; s=y; bh=AAAA\r\n"),
                    example_keys());
    CHECK(results_of(results) ==
          std::vector{DkimResult::pass, DkimResult::neutral, DkimResult::pass});
    CHECK(results[1].domain == "x.example");
  }
  SECTION("a tab before the colon") {
    const auto results = dkim_verify(
        "DKIM-Signature\t: v=1; a=rsa-sha256; d=x.example; s=y; h=from; bh=AAAA; b=AAAA\r\n" +
            message,
        example_keys());
    CHECK(results_of(results) ==
          std::vector{DkimResult::neutral, DkimResult::pass, DkimResult::pass});
  }
  SECTION("rsa-sha1 is refused (RFC 8301) without a key lookup") {
    const std::string sha1 = replaced(message, "a=rsa-sha256", "a=rsa-sha1");
    CHECK(dkim_key_names(sha1) == std::vector<std::string>{kEd25519Name});
    const auto results = dkim_verify(sha1, example_keys());
    CHECK(results_of(results) == std::vector{DkimResult::pass, DkimResult::policy});
  }
}

TEST_CASE("dkim_verify: at most five signatures, in header order", "[dkim]") {
  std::string message = example_message();
  std::vector<std::string> junk_names;
  for (int i = 0; i < 5; ++i) {
    const std::string selector = "s" + std::to_string(i);
    message = "DKIM-Signature: v=1; a=rsa-sha256; d=junk.example; s=" + selector +
              "; h=from; bh=AAAA; b=AAAA\r\n" + message;
    junk_names.insert(junk_names.begin(), selector + "._domainkey.junk.example");
  }
  CHECK(dkim_key_names(message) == junk_names);
  const auto results = dkim_verify(message, example_keys());
  REQUIRE(results.size() == 5);
  for (const auto& result : results) CHECK(result.domain == "junk.example");
}

TEST_CASE("dkim_verify: an unsigned message has no results", "[dkim]") {
  CHECK(dkim_verify(kPlainMessage, {}).empty());
  CHECK(dkim_verify("", {}).empty());
}

TEST_CASE("dkim_key_names: one name per signature's key, in order", "[dkim]") {
  CHECK(dkim_key_names(kPlainMessage).empty());
  CHECK(dkim_key_names(example_message()) == std::vector<std::string>{kEd25519Name, kRsaName});

  const std::string body = "From: a@example.com\r\n\r\nHi.\r\n";
  SECTION("one signature; names are lower-case and unfolded") {
    CHECK(dkim_key_names("DKIM-Signature: v=1; a=ed25519-sha256; s=Sel;\r\n d=Mail.\r\n "
                         "Example.COM; b=x\r\n" +
                         body) == std::vector<std::string>{"sel._domainkey.mail.example.com"});
  }
  SECTION("the same key twice is fetched once") {
    const std::string signature = "dkim-signature: d=example.com; s=k1; b=x\r\n";
    CHECK(dkim_key_names(signature + signature + body) ==
          std::vector<std::string>{"k1._domainkey.example.com"});
  }
  SECTION("signatures whose tags cannot be read need no key") {
    const std::string good = "DKIM-Signature: d=example.com; s=good\r\n";
    const auto names = dkim_key_names(
        GENERATE(
            as<std::string>{}, "DKIM-Signature: d=example.com\r\n", "DKIM-Signature: s=sel; d=\r\n",
            "DKIM-Signature: d=example.com; s=a; s=b\r\n",
            "DKIM-Signature: ; d=example.com; s=a\r\n", "DKIM-Signature: d=example.com;; s=a\r\n",
            "DKIM-Signature: d=example.com; s=a b=c\r\n", "DKIM-Signature: d=example.com; 1s=a\r\n",
            "DKIM-Signature: d=ex\xc3\xa4mple.com; s=a\r\n", "DKIM-Signature:\r\n") +
        good + body);
    CHECK(names == std::vector<std::string>{"good._domainkey.example.com"});
  }
  SECTION("a DKIM-Signature in the body is not one") {
    CHECK(dkim_key_names(body + "DKIM-Signature: d=example.com; s=k1\r\n").empty());
  }
}

TEST_CASE("dkim_record_key: the p= of a key record, unfolded", "[dkim]") {
  CHECK(dkim_record_key("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=") ==
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  // Resolvers join a record's strings; zone files and tools leave spaces in long keys.
  CHECK(dkim_record_key("p=MIIB IjAN\tBgkq ;k=rsa") == "MIIBIjANBgkq");
  CHECK(dkim_record_key("v=DKIM1; p=") == "");                // revoked
  CHECK(dkim_record_key("v=DKIM1; k=rsa") == "");             // none
  CHECK(dkim_record_key("v=spf1 ip4:192.0.2.1 -all") == "");  // another record
  CHECK(dkim_record_key("p=abc; not a tag") == "");           // not a tag-list
  CHECK(dkim_record_key("p=abc; p=def") == "");               // a tag twice: not a valid tag-list
}

TEST_CASE("DkimResult: RFC 8601 words", "[dkim]") {
  using relayq::policy::to_string;
  CHECK(to_string(DkimResult::none) == "none");
  CHECK(to_string(DkimResult::pass) == "pass");
  CHECK(to_string(DkimResult::fail) == "fail");
  CHECK(to_string(DkimResult::neutral) == "neutral");
  CHECK(to_string(DkimResult::policy) == "policy");
  CHECK(to_string(DkimResult::temperror) == "temperror");
  CHECK(to_string(DkimResult::permerror) == "permerror");
}
