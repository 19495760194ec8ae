// ClientSession before and after transactions: greeting, EHLO, HELO fallback, QUIT, unsolicited
// replies, deadlines per state.
#include <catch2/catch.hpp>

#include "support/client_session_harness.hpp"

using relayq::mta::ClientState;
using relayq::mta::SmtpReply;
using namespace relayq::mta::client_testing;

// --- Greeting ----------------------------------------------------------------------------

TEST_CASE("client waits for the greeting then says EHLO", "[client_session]") {
  Server server(GENERATE(0u, 1u));
  CHECK(server.connect().empty());
  CHECK(server.session.state() == ClientState::connecting);
  CHECK(server.say("220-mx.test ESMTP\r\n220 second line\r\n") == "EHLO relay.test\r\n");
  CHECK(server.session.state() == ClientState::greeting);
}

TEST_CASE("client greeting refused or lost at every reply class", "[client_session]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  Server server;
  server.connect();
  const std::string written = happen(server, event);
  // Only a 5xx refusal gets a QUIT: the server waits for it (RFC 5321 3.1).
  CHECK(written == (event == Event::permanent ? "QUIT\r\n" : ""));
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), reply_for(event, "greeting"));
  CHECK_FALSE(server.result());
}

TEST_CASE("client treats a non-220 success greeting as a refusal", "[client_session]") {
  Server server;
  server.connect();
  CHECK(server.say("250 mx.test hello\r\n").empty());
  CHECK(server.session.state() == ClientState::closed);
  check_reply(*server.session.setup_failure(), {250, "250 mx.test hello"});
}

TEST_CASE("client connect failure before any greeting is a code 0 setup failure",
          "[client_session]") {
  Server server;
  server.session.connection_lost("connection refused");
  CHECK(server.session.state() == ClientState::closed);
  check_reply(*server.session.setup_failure(), {0, "connection lost: connection refused"});
}

// --- EHLO and HELO -----------------------------------------------------------------------

TEST_CASE("client records the EHLO extensions", "[client_session]") {
  Server server(GENERATE(0u, 1u));
  server.connect();
  server.say("220 mx.test\r\n");
  CHECK(server
            .say(lines({"250-mx.test", "250-pipelining", "250-SIZE 52428800", "250-8BITMIME",
                        "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250 HELP"}))
            .empty());
  CHECK(server.session.state() == ClientState::idle);
  CHECK_FALSE(server.session.setup_failure());
  const auto& extensions = server.session.extensions();
  CHECK(extensions.pipelining);
  CHECK(extensions.size);
  CHECK(extensions.eight_bit_mime);
  CHECK(extensions.smtputf8);
  CHECK(extensions.enhanced_status_codes);
  CHECK(extensions.chunking);
  CHECK(server.session.pipelining());
  CHECK(server.session.size_limit() == 52428800u);
}

TEST_CASE("client accepts a one-line EHLO reply as no extensions", "[client_session]") {
  Server server;
  server.ready("250 mx.test\r\n");
  CHECK_FALSE(server.session.pipelining());
  CHECK_FALSE(server.session.extensions().size);
  CHECK_FALSE(server.session.size_limit());
}

TEST_CASE("client EHLO at every reply class", "[client_session]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  Server server;
  server.connect();
  server.say("220 mx.test\r\n");
  const std::string written = happen(server, event);
  if (event == Event::permanent) {
    // A server without ESMTP: fall back to HELO.
    CHECK(written == "HELO relay.test\r\n");
    CHECK(server.session.state() == ClientState::greeting);
    CHECK_FALSE(server.session.setup_failure());
    return;
  }
  CHECK(written == (event == Event::temporary ? "QUIT\r\n" : ""));
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), reply_for(event, "EHLO reply"));
}

TEST_CASE("client HELO fallback at every reply class", "[client_session]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  Server server;
  server.connect();
  server.say("220 mx.test\r\n");
  REQUIRE(server.say("502 5.5.2 EHLO not implemented\r\n") == "HELO relay.test\r\n");
  const std::string written = happen(server, event);
  const bool polite = event == Event::temporary || event == Event::permanent;
  CHECK(written == (polite ? "QUIT\r\n" : ""));
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), reply_for(event, "HELO reply"));
}

TEST_CASE("client after HELO sends plain commands one at a time", "[client_session]") {
  Server server;
  server.connect();
  server.say("220 mx.test\r\n");
  server.say("500 what\r\n");
  CHECK(server.say("250 mx.test\r\n").empty());
  CHECK(server.session.state() == ClientState::idle);
  CHECK_FALSE(server.session.pipelining());
  auto out = message();
  out.eight_bit_mime = true;
  CHECK(server.send(out) == "MAIL FROM:<s@x.test>\r\n");
  CHECK(server.say("250 ok\r\n") == "RCPT TO:<a@y.test>\r\n");
}

// --- QUIT --------------------------------------------------------------------------------

TEST_CASE("client QUIT from idle closes on 221", "[client_session]") {
  Server server;
  server.ready();
  CHECK(server.quit() == "QUIT\r\n");
  CHECK(server.session.state() == ClientState::quitting);
  CHECK(server.session.deadline_ms() == server.now + 301000);
  CHECK(server.say("221 2.0.0 bye\r\n").empty());
  CHECK(server.session.state() == ClientState::closed);
  CHECK_FALSE(server.session.setup_failure());
  CHECK_FALSE(server.result());
}

TEST_CASE("client QUIT closes whatever the reply class", "[client_session]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  Server server;
  server.ready();
  server.quit();
  CHECK(happen(server, event).empty());
  CHECK(server.session.state() == ClientState::closed);
  CHECK_FALSE(server.session.setup_failure());
  CHECK_FALSE(server.result());
}

TEST_CASE("client quit outside idle closes at once", "[client_session]") {
  SECTION("before the greeting") {
    Server server;
    server.connect();
    CHECK(server.quit().empty());
    CHECK(server.session.state() == ClientState::closed);
  }
  SECTION("during a transaction its recipients get code 0") {
    Server server;
    server.ready();
    server.send(message());
    CHECK(server.quit().empty());
    CHECK(server.session.state() == ClientState::closed);
    const SmtpReply closed{0, "session closed before the server answered"};
    check_result(server.result(), {closed, closed});
  }
}

// --- Replies nobody asked for ------------------------------------------------------------

TEST_CASE("client closes on a 421 while idle", "[client_session]") {
  Server server;
  server.ready();
  CHECK(server.say("421 4.4.2 idle too long\r\n").empty());
  CHECK(server.session.state() == ClientState::closed);
  CHECK_FALSE(server.session.setup_failure());
  CHECK_FALSE(server.result());
}

TEST_CASE("client treats any other unsolicited reply as a protocol error", "[client_session]") {
  Server server;
  server.ready();
  server.say("250 surprise\r\n");
  CHECK(server.session.closed());
  server.session.connection_lost("late");  // nothing left to report
  CHECK_FALSE(server.result());
}

TEST_CASE("client ignores input after closing", "[client_session]") {
  Server server;
  server.connect();
  server.say("HELLO\r\n220 mx.test\r\n");
  CHECK(server.session.state() == ClientState::closed);
  CHECK(server.say("220 mx.test\r\n").empty());
  check_reply(*server.session.setup_failure(), {0, "protocol error: malformed reply \"HELLO\""});
}

TEST_CASE("client send outside idle fails at once with code 0", "[client_session]") {
  Server server;
  server.connect();
  CHECK(server.send(message()).empty());
  const SmtpReply not_ready{0, "session not ready for a message"};
  check_result(server.result(), {not_ready, not_ready});
  CHECK(server.session.state() == ClientState::connecting);
}

// --- Deadlines ---------------------------------------------------------------------------

TEST_CASE("client deadlines follow RFC 5321 timeouts per state", "[client_session]") {
  Server server;
  CHECK(server.session.deadline_ms() == std::numeric_limits<std::int64_t>::max());
  server.connect();
  CHECK(server.session.deadline_ms() == 1000 + 300000);
  server.now = 2000;
  server.say("220 mx.test\r\n");
  CHECK(server.session.deadline_ms() == 2000 + 301000);
  server.now = 3000;
  server.say(kPipelinedEhlo);
  CHECK(server.session.deadline_ms() == std::numeric_limits<std::int64_t>::max());

  // Pipelined: each reply restarts the clock for the next one.
  server.now = 4000;
  server.send(message());
  CHECK(server.session.deadline_ms() == 4000 + 301000);
  server.now = 5000;
  server.say("250 ok\r\n250 ok\r\n250 ok\r\n");
  CHECK(server.session.deadline_ms() == 5000 + 120000);

  // The content: data block timeout while it is written, then end of data timeout.
  server.now = 6000;
  server.session.receive("354 go\r\n", server.now);
  CHECK(server.session.deadline_ms() == 6000 + 180000);
  const std::string content = server.session.take_output();
  CHECK(content == "Hello\r\n.\r\n");
  CHECK(server.session.deadline_ms() == 6000 + 180000);
  server.now = 7000;
  server.session.output_written(server.now);
  CHECK(server.session.deadline_ms() == 7000 + 600000);
}

TEST_CASE("client output_written restarts the data block timeout until all is written",
          "[client_session]") {
  Server server;
  server.ready();
  auto& session = server.session;
  session.send(message(), server.now);
  const std::string group = session.take_output();  // its write is still in flight
  session.receive("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", server.now);
  const std::string content = session.take_output();
  CHECK(content == "Hello\r\n.\r\n");
  server.now = 5000;
  session.output_written(server.now);  // the group's write: content still going out
  CHECK(session.deadline_ms() == 5000 + 180000);
  server.now = 6000;
  session.output_written(server.now);  // the content's write
  CHECK(session.deadline_ms() == 6000 + 600000);
  CHECK(session.take_output().empty());
  CHECK(group.size() > 0);
}

TEST_CASE("client timeout while the content is written names it", "[client_session]") {
  Server server;
  server.ready();
  server.send(message());
  server.say("250 ok\r\n250 ok\r\n250 ok\r\n");
  server.session.receive("354 go\r\n", server.now);
  server.session.take_output();  // never acknowledged
  server.now = server.session.deadline_ms();
  server.session.timed_out(server.now);
  const SmtpReply expected{0, "timeout waiting for message content to be written"};
  check_result(server.result(), {expected, expected});
  CHECK(server.session.state() == ClientState::closed);
}

TEST_CASE("client ignores a stale timer", "[client_session]") {
  Server server;
  server.connect();
  server.session.timed_out(server.session.deadline_ms() - 1);
  CHECK(server.session.state() == ClientState::connecting);
  server.ready();
  server.session.timed_out(server.now + 10'000'000);
  CHECK(server.session.state() == ClientState::idle);
}

TEST_CASE("client tells its host every change of state by name", "[client_session]") {
  Server server;
  std::vector<std::string> path;
  server.session.set_trace([&path](ClientState from, ClientState to) {
    path.push_back(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
  });
  server.connect();
  server.say("220 mx.test ESMTP\r\n");
  server.say(kPipelinedEhlo);
  server.session.quit(server.now);
  server.say("221 bye\r\n");
  CHECK(path == std::vector<std::string>{"connecting -> greeting", "greeting -> idle",
                                         "idle -> quitting", "quitting -> closed"});
}
