// ClientSession in LMTP mode (RFC 2033): LHLO with no HELO fallback, and one reply per
// accepted recipient after the content, each deciding that recipient's fate; every event that
// can come between those replies.
#include <catch2/catch.hpp>

#include <iterator>
#include <string>

#include "support/client_session_harness.hpp"

using relayq::mta::ClientState;
using relayq::mta::SmtpReply;
using namespace relayq::mta::client_testing;

namespace {

// What Dovecot's LMTP server announces.
const std::string kLhloReply = lines(
    {"250-mx.test", "250-8BITMIME", "250-CHUNKING", "250-ENHANCEDSTATUSCODES", "250 PIPELINING"});
const std::string kGroup3 =
    "MAIL FROM:<s@x.test> BODY=8BITMIME\r\nRCPT TO:<a@y.test>\r\nRCPT TO:<b@y.test>\r\n"
    "RCPT TO:<c@y.test>\r\nDATA\r\n";

struct LmtpServer : Server {
  explicit LmtpServer(std::size_t piece = 0) : Server(piece) { config->lmtp = true; }

  // Greeted, LHLO answered, the three-recipient message sent as one pipelined group with
  // b refused at RCPT; returns the content the client wrote after the 354.
  std::string content_sent() {
    connect();
    say("220 mx.test LMTP ready\r\n");
    REQUIRE(writes.back() == "LHLO relay.test\r\n");
    say(kLhloReply);
    REQUIRE(session.state() == ClientState::idle);
    auto out = message({"a@y.test", "b@y.test", "c@y.test"});
    out.eight_bit_mime = true;
    REQUIRE(send(std::move(out)) == kGroup3);
    return say(
        "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <b@y.test> unknown\r\n"
        "250 2.1.5 OK\r\n354 OK\r\n");
  }
};

const SmtpReply kRefused{550, "550 5.1.1 <b@y.test> unknown"};

}  // namespace

TEST_CASE("LMTP client greets with LHLO and never falls back to HELO", "[client_lmtp]") {
  LmtpServer server;
  server.connect();
  CHECK(server.say("220 mx.test LMTP ready\r\n") == "LHLO relay.test\r\n");
  CHECK(server.say("500 5.5.1 unknown command\r\n") == "QUIT\r\n");
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  CHECK(server.session.setup_failure()->code == 500);
}

TEST_CASE("LMTP client gives each accepted recipient its own end-of-data reply", "[client_lmtp]") {
  LmtpServer server(GENERATE(0u, 1u, 5u));
  CHECK(server.content_sent() == "Hello\r\n.\r\n");
  // One reply per accepted recipient (a, c) in RCPT order; the first alone settles nothing
  // but a.
  CHECK(server.say("250 2.0.0 <a@y.test> Saved\r\n").empty());
  CHECK_FALSE(server.result());
  CHECK(server.session.state() == ClientState::busy);
  server.say("452 4.2.2 <c@y.test> Mailbox full\r\n");
  check_result(
      server.result(),
      {{250, "250 2.0.0 <a@y.test> Saved"}, kRefused, {452, "452 4.2.2 <c@y.test> Mailbox full"}});
  CHECK(server.session.state() == ClientState::idle);
  // A complete transaction: the next one starts without RSET.
  CHECK(server.send(message({"a@y.test"})).starts_with("MAIL FROM:<s@x.test>"));
}

TEST_CASE("LMTP client: whatever ends the session between the per-recipient replies",
          "[client_lmtp]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  LmtpServer server;
  server.content_sent();
  server.say("250 2.0.0 <a@y.test> Saved\r\n");
  happen(server, event);
  const SmtpReply second = reply_for(event, "end of data reply");
  // a keeps its delivery; c gets what came instead of its own reply (a 4xx or 5xx is its
  // own reply).
  check_result(server.result(), {{250, "250 2.0.0 <a@y.test> Saved"}, kRefused, second});
  CHECK(server.session.state() == (closes(event) ? ClientState::closed : ClientState::idle));
}

TEST_CASE("A probe asks MAIL and RCPT only, and keeps every RCPT reply", "[client_lmtp]") {
  const bool pipelined = GENERATE(false, true);
  INFO((pipelined ? "pipelined" : "one command at a time"));
  LmtpServer server;
  server.connect();
  server.say("220 mx.test LMTP ready\r\n");
  server.say(pipelined ? kLhloReply : lines({"250-mx.test", "250 8BITMIME"}));
  auto probe = message({"a@y.test", "nobody@y.test"}, "");
  probe.sender.clear();
  probe.probe = true;
  const std::string written = server.send(std::move(probe));
  if (pipelined) {
    CHECK(written == "MAIL FROM:<>\r\nRCPT TO:<a@y.test>\r\nRCPT TO:<nobody@y.test>\r\n");
    server.say("250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <nobody@y.test> unknown\r\n");
  } else {
    CHECK(written == "MAIL FROM:<>\r\n");
    CHECK(server.say("250 2.1.0 OK\r\n") == "RCPT TO:<a@y.test>\r\n");
    CHECK(server.say("250 2.1.5 OK\r\n") == "RCPT TO:<nobody@y.test>\r\n");
    CHECK(server.say("550 5.1.1 <nobody@y.test> unknown\r\n").empty());
  }
  check_result(server.result(),
               {{250, "250 2.1.5 OK"}, {550, "550 5.1.1 <nobody@y.test> unknown"}});
  CHECK(server.session.state() == ClientState::idle);
  // The transaction was left open: the next one starts with RSET.
  CHECK(server.send(message({"a@y.test"})).starts_with("RSET\r\n"));
}
