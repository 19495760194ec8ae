// Unit tests of the header block helpers: fields with folding, From: domains, and removing
// forged Authentication-Results.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "policy/message_headers.hpp"

using relayq::policy::from_domains;
using relayq::policy::header_fields;
using relayq::policy::remove_authentication_results;
using Domains = std::vector<std::string>;

namespace {

// A stored message with these header lines (each given without its CRLF) and a short body.
std::string message_with(const std::vector<std::string>& lines) {
  std::string message =
      "Received: from client.test by relay.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n";
  for (const auto& line : lines) message += line + "\r\n";
  return message + "\r\nFrom: body@not-a-header.test\r\n";
}

}  // namespace

TEST_CASE("header fields: names, raw folded values, offsets up to the blank line", "[headers]") {
  const std::string message =
      "Received: from a.test\r\n"
      "\tby b.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
      "Subject: one\r\n"
      "  two\r\n"
      "X-Empty:\r\n"
      "\r\n"
      "Body: not a field\r\n";
  const auto fields = header_fields(message);
  REQUIRE(fields.size() == 3);
  CHECK(fields[0].name == "Received");
  CHECK(fields[0].value == " from a.test\r\n\tby b.test; Mon, 1 Jan 2024 00:00:00 +0000");
  CHECK(fields[0].offset == 0);
  CHECK(message.substr(fields[0].offset, fields[0].length) ==
        "Received: from a.test\r\n\tby b.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
  CHECK(fields[1].name == "Subject");
  CHECK(fields[1].value == " one\r\n  two");
  CHECK(message.substr(fields[1].offset, fields[1].length) == "Subject: one\r\n  two\r\n");
  CHECK(fields[2].name == "X-Empty");
  CHECK(fields[2].value.empty());
  CHECK(fields[2].offset + fields[2].length == message.find("\r\n\r\n") + 2);
}

TEST_CASE("header fields: a message without a body is all header", "[headers]") {
  SECTION("the last line ends with CRLF") {
    const auto fields = header_fields("Received: x\r\nSubject: s\r\n");
    REQUIRE(fields.size() == 2);
    CHECK(fields[1].value == " s");
    CHECK(fields[1].offset + fields[1].length == 25);
  }
  SECTION("the last line has no CRLF") {
    const std::string message = "Received: x\r\nSubject: s\r\n folded";
    const auto fields = header_fields(message);
    REQUIRE(fields.size() == 2);
    CHECK(fields[1].value == " s\r\n folded");
    CHECK(fields[1].offset + fields[1].length == message.size());
  }
  SECTION("empty text") {
    CHECK(header_fields("").empty());
  }
}

TEST_CASE("header fields: lines that are not fields are skipped, not the end", "[headers]") {
  const auto fields = header_fields(
      "Received: x\r\n"
      "not a field line\r\n"
      " its continuation\r\n"
      "Bad Name: has a space\r\n"
      "From : obsolete@syntax.test\r\n"
      "\tcontinued\r\n"
      "\r\n");
  REQUIRE(fields.size() == 2);
  CHECK(fields[0].name == "Received");
  CHECK(fields[0].value == " x");
  CHECK(fields[1].name == "From");
  CHECK(fields[1].value == " obsolete@syntax.test\r\n\tcontinued");
}

TEST_CASE("From domains: addresses in their usual and unusual forms", "[headers]") {
  const auto from = [](const std::string& value) {
    return from_domains(message_with({"From:" + value}));
  };
  CHECK(from(" user@example.com") == Domains{"example.com"});
  CHECK(from(" <user@example.com>") == Domains{"example.com"});
  CHECK(from(" Joe User <user@example.com>") == Domains{"example.com"});
  // A display name with a comma, an '@' and brackets in quotes is one name.
  CHECK(from(" \"Doe, John <john@evil.test>\" <john@example.com>") == Domains{"example.com"});
  CHECK(from(" \"a@b.test\"@example.com") == Domains{"example.com"});
  // Comments, nested, with specials inside, anywhere.
  CHECK(from(" user@example.com (Joe, <x@evil.test>)") == Domains{"example.com"});
  CHECK(from(" (first (nested) x@evil.test) Joe <user@(c)example.com>") == Domains{"example.com"});
  // A source route is not the domain.
  CHECK(from(" <@relay.test,@other.test:user@example.com>") == Domains{"example.com"});
  // Folded, with the obsolete spaces between labels.
  CHECK(from(" Joe\r\n <user@example\r\n\t.com>") == Domains{"example.com"});
  CHECK(from(" user@[192.0.2.1]") == Domains{"[192.0.2.1]"});
  CHECK(from(" undisclosed-sender").empty());
  CHECK(from(" <>").empty());
}

TEST_CASE("From domains: lower-case ASCII, U-labels kept", "[headers]") {
  CHECK(from_domains(message_with({"From: USER@Example.COM"})) == Domains{"example.com"});
  CHECK(from_domains(message_with({"From: u@XN--BCHER-KVA.Example"})) ==
        Domains{"xn--bcher-kva.example"});
  CHECK(from_domains(message_with({"From: u@b\xC3\xBC\x63her.EXAMPLE"})) ==
        Domains{"b\xC3\xBC\x63her.example"});
}

TEST_CASE("From domains: several addresses, groups, fields are all reported", "[headers]") {
  CHECK(from_domains(message_with({"From: a@one.test, \"B, Bee\" <b@two.test>"})) ==
        Domains{"one.test", "two.test"});
  CHECK(from_domains(message_with({"From: Team: a@one.test, b@two.test;"})) ==
        Domains{"one.test", "two.test"});
  CHECK(from_domains(message_with({"From: Undisclosed recipients:;"})).empty());
  // Two bracketed addresses in one mailbox: neither may hide behind the other.
  CHECK(from_domains(message_with({"From: <a@one.test> <b@two.test>"})) ==
        Domains{"one.test", "two.test"});
  CHECK(from_domains(message_with({"From: a@one.test", "Subject: x", "fROM: b@two.test"})) ==
        Domains{"one.test", "two.test"});
  CHECK(from_domains(message_with({"Sender: s@one.test", "Reply-To: r@two.test"})).empty());
  // A From: in the body is not a field.
  CHECK(from_domains(message_with({})).empty());
}

TEST_CASE("Authentication-Results claiming our authserv-id are removed", "[headers]") {
  const std::string message = message_with({
      "Authentication-Results: relay.example.com; spf=pass smtp.mailfrom=a.test",
      "Authentication-Results: other.example.net; dkim=pass header.d=a.test",
      "Subject: hello",
      "authentication-results: RELAY.Example.COM;\r\n\tdmarc=pass header.from=a.test",
      "Authentication-Results: relay.example.com 1; spf=pass",
      "Authentication-Results: (forged) relay.example.com; dkim=pass",
      "Authentication-Results: \"relay.example.com\"; none",
      "Authentication-Results: relay.example.com.evil.test; spf=pass",
      "Authentication-Results: relay.example.com(comment); spf=fail",
  });
  std::string kept = message;
  const std::size_t removed = remove_authentication_results(kept, "relay.example.com");
  CHECK(removed == 6);
  CHECK(kept == message_with({
                    "Authentication-Results: other.example.net; dkim=pass header.d=a.test",
                    "Subject: hello",
                    "Authentication-Results: relay.example.com.evil.test; spf=pass",
                }));
}

// The message after removal, and how many were removed.
std::pair<std::string, std::size_t> removing(std::string message, std::string_view authserv_id) {
  const std::size_t removed = remove_authentication_results(message, authserv_id);
  return {std::move(message), removed};
}

TEST_CASE("Authentication-Results removal leaves the rest alone", "[headers]") {
  using Result = std::pair<std::string, std::size_t>;
  SECTION("the body is not touched") {
    const std::string message =
        "Received: x\r\n\r\nAuthentication-Results: relay.example.com; spf=pass\r\n";
    CHECK(removing(message, "relay.example.com") == Result{message, 0});
  }
  SECTION("a message that ends with the forged field") {
    CHECK(removing("Received: x\r\nAuthentication-Results: r.test; none", "r.test") ==
          Result{"Received: x\r\n", 1});
  }
  SECTION("an empty authserv-id matches nothing, even an empty one") {
    const std::string message = message_with({"Authentication-Results: ; none"});
    CHECK(removing(message, "") == Result{message, 0});
  }
  SECTION("removing twice removes nothing more") {
    const auto once = removing(message_with({"Authentication-Results: r.test; none"}), "r.test");
    CHECK(once == Result{message_with({}), 1});
    CHECK(removing(once.first, "r.test") == Result{message_with({}), 0});
  }
}
