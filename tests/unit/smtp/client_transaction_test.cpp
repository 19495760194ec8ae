// ClientSession transactions: every reply class at MAIL, each RCPT, DATA, end of data and
// RSET, pipelined and not; local refusals; reuse; RSET only when needed; split replies.
#include <catch2/catch.hpp>

#include <random>

#include "support/client_session_harness.hpp"

using relayq::mta::ClientState;
using relayq::mta::OutboundMessage;
using relayq::mta::SmtpReply;
using relayq::mta::TransactionResult;
using namespace relayq::mta::client_testing;

namespace {

const std::string& ehlo_for(bool pipelined) {
  return pipelined ? kPipelinedEhlo : kPlainEhlo;
}

// After a cut-short transaction the next one begins with RSET; after a complete one it does
// not. Checks that, then delivers the message.
void check_next_send(Server& server, bool expect_rset) {
  const bool pipelined = server.session.pipelining();
  const std::string written = server.send(message());
  if (pipelined) {
    CHECK(written == (expect_rset ? "RSET\r\n" : "") + kGroup);
    if (expect_rset) server.say("250 2.0.0 ok\r\n");
    CHECK(server.say("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n") == "Hello\r\n.\r\n");
  } else {
    if (expect_rset) {
      CHECK(written == "RSET\r\n");
      CHECK(server.say("250 2.0.0 ok\r\n") == "MAIL FROM:<s@x.test> SIZE=7\r\n");
    } else {
      CHECK(written == "MAIL FROM:<s@x.test> SIZE=7\r\n");
    }
    server.say("250 ok\r\n");
    server.say("250 ok\r\n");
    server.say("250 ok\r\n");
    CHECK(server.say("354 go\r\n") == "Hello\r\n.\r\n");
  }
  server.say("250 2.0.0 queued\r\n");
  check_result(server.result(), {kQueued, kQueued});
}

// Checks how the session ended after an event in a transaction.
void check_after(Server& server, Event event, bool expect_rset) {
  if (closes(event)) {
    CHECK(server.session.state() == ClientState::closed);
    CHECK_FALSE(server.session.setup_failure());
  } else {
    CHECK(server.session.state() == ClientState::idle);
    check_next_send(server, expect_rset);
  }
}

}  // namespace

// --- Whole transactions ------------------------------------------------------------------

TEST_CASE("client pipelines MAIL RCPT and DATA in one write", "[client_transaction]") {
  Server server(GENERATE(0u, 1u));
  server.ready();
  CHECK(server.send(message()) == kGroup);
  CHECK(server.writes.size() == 2);  // EHLO, the group
  CHECK(server.session.state() == ClientState::busy);
  CHECK(server.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n").empty());
  CHECK(server.say("354 go ahead\r\n") == "Hello\r\n.\r\n");
  CHECK_FALSE(server.result());
  CHECK(server.say("250 2.0.0 queued\r\n").empty());
  check_result(server.result(), {kQueued, kQueued});
  CHECK(server.session.state() == ClientState::idle);
}

TEST_CASE("client without PIPELINING sends one command per reply", "[client_transaction]") {
  Server server(GENERATE(0u, 1u));
  server.ready(kPlainEhlo);
  CHECK(server.send(message()) == "MAIL FROM:<s@x.test> SIZE=7\r\n");
  CHECK(server.say("250 2.1.0 ok\r\n") == "RCPT TO:<a@y.test>\r\n");
  CHECK(server.say("250 2.1.5 ok\r\n") == "RCPT TO:<b@y.test>\r\n");
  CHECK(server.say("250 2.1.5 ok\r\n") == "DATA\r\n");
  CHECK(server.say("354 go ahead\r\n") == "Hello\r\n.\r\n");
  CHECK(server.say("250 2.0.0 queued\r\n").empty());
  check_result(server.result(), {kQueued, kQueued});
  CHECK(server.writes.size() == 6);  // EHLO, MAIL, RCPT, RCPT, DATA, content
}

TEST_CASE("client MAIL parameters follow the extensions offered", "[client_transaction]") {
  Server server;
  OutboundMessage out = message({"a@y.test"});
  SECTION("all offered") {
    server.ready();
    out.eight_bit_mime = true;
    out.smtputf8 = true;
    CHECK(server.send(out).starts_with("MAIL FROM:<s@x.test> SIZE=7 BODY=8BITMIME SMTPUTF8\r\n"));
  }
  SECTION("8BITMIME not offered") {
    server.ready(lines({"250-mx.test", "250 PIPELINING"}));
    out.eight_bit_mime = true;
    CHECK(server.send(out).starts_with("MAIL FROM:<s@x.test>\r\n"));
  }
  SECTION("SIZE offered without a limit") {
    server.ready(lines({"250-mx.test", "250-PIPELINING", "250 SIZE"}));
    out.body = std::make_shared<const std::string>(std::string(5000, 'x'));
    CHECK(server.send(out).starts_with("MAIL FROM:<s@x.test> SIZE=5000\r\n"));
    CHECK_FALSE(server.session.size_limit());
  }
  SECTION("null sender") {
    server.ready();
    out.sender.clear();
    CHECK(server.send(out).starts_with("MAIL FROM:<> SIZE=7\r\n"));
  }
}

TEST_CASE("client refuses locally a message over the server SIZE", "[client_transaction]") {
  Server server;
  server.ready();
  CHECK(server.send(message({"a@y.test", "b@y.test"}, std::string(1001, 'x'))).empty());
  const SmtpReply too_big{552, "552 5.3.4 Message size exceeds remote limit"};
  check_result(server.result(), {too_big, too_big});
  CHECK(too_big.permanent());
  CHECK(server.session.state() == ClientState::idle);
  // Exactly at the limit goes; nothing was cut short, so no RSET.
  CHECK(server.send(message({"a@y.test"}, std::string(1000, 'x')))
            .starts_with("MAIL FROM:<s@x.test> SIZE=1000\r\n"));
}

TEST_CASE("client refuses locally SMTPUTF8 mail to a server without it", "[client_transaction]") {
  Server server;
  server.ready(lines({"250-mx.test", "250-PIPELINING", "250 8BITMIME"}));
  OutboundMessage out = message();
  out.smtputf8 = true;
  CHECK(server.send(out).empty());
  const SmtpReply refused{553, "553 5.6.7 Remote server does not support SMTPUTF8"};
  check_result(server.result(), {refused, refused});
  CHECK(server.session.state() == ClientState::idle);
}

TEST_CASE("client message without recipients has an empty result", "[client_transaction]") {
  Server server;
  server.ready();
  CHECK(server.send(message({})).empty());
  check_result(server.result(), {});
  CHECK(server.session.state() == ClientState::idle);
}

// --- Every reply class at every step -----------------------------------------------------

TEST_CASE("client MAIL at every reply class", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO((pipelined ? "pipelined " : "plain ") << event_name(event));
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  server.send(message());
  CHECK(happen(server, event).empty());
  if (pipelined && !closes(event)) {
    // The rest of the group is still answered, and changes nothing.
    CHECK_FALSE(server.result());
    CHECK(server.say("503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n").empty());
    CHECK(server.say("503 5.5.1 need MAIL\r\n").empty());
  }
  const SmtpReply expected = reply_for(event, "MAIL reply");
  check_result(server.result(), {expected, expected});
  check_after(server, event, true);
}

TEST_CASE("client RCPT at every reply class for each recipient", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const std::size_t which = GENERATE(0u, 1u);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO((pipelined ? "pipelined " : "plain ") << "recipient " << which << " " << event_name(event));
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  server.send(message());
  server.say("250 2.1.0 ok\r\n");
  if (which == 1) server.say("250 2.1.5 ok\r\n");
  const std::string written = happen(server, event);
  const SmtpReply expected = reply_for(event, "RCPT reply");
  if (closes(event)) {
    CHECK(written.empty());
    // The accepted recipient's message never went: it shares the fate.
    check_result(server.result(), {expected, expected});
  } else {
    if (which == 0) {
      CHECK(written == (pipelined ? "" : "RCPT TO:<b@y.test>\r\n"));
      CHECK(server.say("250 2.1.5 ok\r\n") == (pipelined ? "" : "DATA\r\n"));
    } else {
      CHECK(written == (pipelined ? "" : "DATA\r\n"));
    }
    CHECK(server.say("354 go\r\n") == "Hello\r\n.\r\n");
    server.say("250 2.0.0 queued\r\n");
    if (which == 0) {
      check_result(server.result(), {expected, kQueued});
    } else {
      check_result(server.result(), {kQueued, expected});
    }
  }
  check_after(server, event, false);
}

TEST_CASE("client 421 after a refused RCPT keeps the refusal", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  Server server;
  server.ready(ehlo_for(pipelined));
  server.send(message());
  server.say("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n421 4.3.2 closing\r\n");
  check_result(server.result(), {{550, "550 5.1.1 no such user"}, {421, "421 4.3.2 closing"}});
  CHECK(server.session.state() == ClientState::closed);
}

TEST_CASE("client sends no content when every RCPT failed", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  server.send(message());
  server.say("250 2.1.0 ok\r\n");
  server.say("550 5.1.1 no such user\r\n");
  const std::string written = server.say("451 4.2.0 mailbox busy\r\n");
  if (pipelined) {
    CHECK(written.empty());
    CHECK_FALSE(server.result());
    CHECK(server.say("554 5.5.1 no valid recipients\r\n").empty());
  } else {
    CHECK(written.empty());  // no DATA
  }
  check_result(server.result(), {{550, "550 5.1.1 no such user"}, {451, "451 4.2.0 mailbox busy"}});
  CHECK(server.session.state() == ClientState::idle);
  check_next_send(server, true);
}

TEST_CASE("client ends at once a pipelined DATA accepted without recipients",
          "[client_transaction]") {
  Server server;
  server.ready();
  server.send(message());
  // RFC 2920 3.1: the client sends a lone dot; the body never goes.
  CHECK(server.say("250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go\r\n") == ".\r\n");
  CHECK_FALSE(server.result());
  CHECK(server.say("554 5.5.1 no valid recipients\r\n").empty());
  const SmtpReply refused{550, "550 5.1.1 no"};
  check_result(server.result(), {refused, refused});
  check_next_send(server, true);
}

TEST_CASE("client DATA at every reply class", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO((pipelined ? "pipelined " : "plain ") << event_name(event));
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  server.send(message());
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  CHECK(happen(server, event).empty());
  const SmtpReply expected = reply_for(event, "DATA reply");
  check_result(server.result(), {expected, expected});
  check_after(server, event, true);
}

TEST_CASE("client end of data at every reply class", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO((pipelined ? "pipelined " : "plain ") << event_name(event));
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  server.send(message());
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  REQUIRE(server.say("354 go\r\n") == "Hello\r\n.\r\n");
  CHECK(happen(server, event).empty());
  const SmtpReply expected = reply_for(event, "end of data reply");
  check_result(server.result(), {expected, expected});
  check_after(server, event, false);
}

TEST_CASE("client end of data reply goes only to accepted recipients", "[client_transaction]") {
  Server server;
  server.ready();
  server.send(message({"a@y.test", "b@y.test", "c@y.test"}));
  server.say("250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n250 ok\r\n354 go\r\n");
  server.say("554 5.7.1 spam\r\n");
  const SmtpReply spam{554, "554 5.7.1 spam"};
  check_result(server.result(), {spam, {452, "452 4.5.3 too many"}, spam});
}

TEST_CASE("client RSET at every reply class", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO((pipelined ? "pipelined " : "plain ") << event_name(event));
  Server server(GENERATE(0u, 1u));
  server.ready(ehlo_for(pipelined));
  // A first transaction cut short at MAIL.
  server.send(message());
  server.say(pipelined ? "451 4.3.0 later\r\n503 no\r\n503 no\r\n503 no\r\n"
                       : "451 4.3.0 later\r\n");
  REQUIRE(server.result());

  const std::string written = server.send(message());
  CHECK(written == (pipelined ? "RSET\r\n" + kGroup : "RSET\r\n"));
  const std::string after = happen(server, event);
  if (closes(event)) {
    CHECK(after.empty());
    const SmtpReply expected = reply_for(event, "RSET reply");
    check_result(server.result(), {expected, expected});
    CHECK(server.session.state() == ClientState::closed);
    return;
  }
  // Its reply is not ours to judge: go on.
  CHECK(after == (pipelined ? "" : "MAIL FROM:<s@x.test> SIZE=7\r\n"));
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  CHECK(server.say("354 go\r\n") == "Hello\r\n.\r\n");
  server.say("250 2.0.0 queued\r\n");
  check_result(server.result(), {kQueued, kQueued});
}

// --- Reuse -------------------------------------------------------------------------------

TEST_CASE("client carries several messages and RSETs only after a cut-short one",
          "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  Server server;
  server.ready(ehlo_for(pipelined));
  check_next_send(server, false);
  check_next_send(server, false);

  // Every recipient refused: cut short.
  server.send(message({"a@y.test"}));
  server.say("250 ok\r\n");
  server.say("550 5.1.1 no\r\n");
  if (pipelined) server.say("554 5.5.1 no valid recipients\r\n");
  check_result(server.result(), {{550, "550 5.1.1 no"}});

  // A local refusal in between does not touch the server, nor the need for RSET.
  server.send(message({"a@y.test"}, std::string(2000, 'x')));
  REQUIRE(server.result());
  check_next_send(server, true);
  check_next_send(server, false);

  // Refused at end of data: a complete transaction, no RSET.
  server.send(message());
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("354 go\r\n");
  server.say("554 5.7.1 rejected\r\n");
  REQUIRE(server.result());
  check_next_send(server, false);
  CHECK(server.quit() == "QUIT\r\n");
}

// --- Split replies -----------------------------------------------------------------------

namespace {

// A dialogue with every kind of outcome; returns everything observable, in order.
std::vector<std::string> transcript(std::size_t piece, bool pipelined) {
  Server server(piece);
  std::vector<std::string> seen;
  const auto record = [&](const std::string& what) { seen.push_back(what); };
  const auto record_result = [&] {
    const auto result = server.result();
    if (!result) return record("no result");
    for (const auto& reply : result->recipients)
      record(std::to_string(reply.code) + " " + reply.text);
  };
  record(server.connect());
  record(server.say("220-mx.test\r\n220 ESMTP\r\n"));
  record(server.say(ehlo_for(pipelined)));
  record(server.send(message()));
  record(server.say("250 ok\r\n250-two\r\n250 lines\r\n550 no\r\n"));
  record(server.say("354 go\r\n250 done\r\n"));
  record_result();
  record(server.send(message({"c@y.test"})));
  record(server.say("250 ok\r\n550 5.1.1 no\r\n"));
  if (pipelined) record(server.say("554 no valid recipients\n"));  // bare LF tolerated
  record_result();
  record(server.send(message({"d@y.test"}, ".a\r\n..b\nc\rd")));
  record(server.say("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"));
  record(server.say("451-4.3.0 a\r\n451 4.3.0 b\r\n"));
  record_result();
  record(server.quit());
  record(server.say("221 bye\r\n"));
  record(std::to_string(static_cast<int>(server.session.state())));
  return seen;
}

}  // namespace

TEST_CASE("client gives identical results however the replies are split", "[client_transaction]") {
  const bool pipelined = GENERATE(true, false);
  const auto whole = transcript(0, pipelined);
  CHECK(whole.size() > 10);
  for (const std::size_t piece : {1u, 2u, 3u, 5u, 7u, 64u}) {
    INFO("pieces of " << piece);
    CHECK(transcript(piece, pipelined) == whole);
  }
}

// --- Content -----------------------------------------------------------------------------

TEST_CASE("client content is dot-stuffed and normalised on the wire", "[client_transaction]") {
  Server server;
  server.ready();
  const std::string body = ".start\r\nbare\nlf\rcr\r\n.\r\n\n.\n..two\r\nend";
  server.send(message({"a@y.test"}, body));
  const std::string wire = server.say("250 ok\r\n250 ok\r\n354 go\r\n");
  CHECK(wire == "..start\r\nbare\r\nlf\r\ncr\r\n..\r\n\r\n..\r\n...two\r\nend\r\n.\r\n");
  check_content(wire, body);
}

TEST_CASE("client random bodies never put a bare CR or LF or an early dot line on the wire",
          "[client_transaction]") {
  std::mt19937 random(20240611);
  std::uniform_int_distribution<int> length(0, 300);
  const std::string_view alphabet = "ab.\r\n\r\n..";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  Server server;
  server.ready(lines({"250-mx.test", "250 PIPELINING"}));
  for (int round = 0; round < 300; ++round) {
    std::string body;
    for (int n = length(random); n > 0; --n) body.push_back(alphabet[pick(random)]);
    INFO("round " << round);
    server.send(message({"a@y.test"}, body));
    const std::string wire = server.say("250 ok\r\n250 ok\r\n354 go\r\n");
    check_content(wire, body);
    server.say("250 ok\r\n");
    REQUIRE(server.result());
  }
}
