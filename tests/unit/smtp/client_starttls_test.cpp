// ClientSession STARTTLS (RFC 3207) under each TLS policy: offered or not, accepted or refused,
// the handshake's end (established, failed, timed out, lost), the EHLO again over TLS, and
// plaintext the server sends after its 220 dropped unread.
#include <catch2/catch.hpp>

#include <limits>

#include "support/client_session_harness.hpp"

using relayq::mta::ClientState;
using relayq::mta::SmtpReply;
using relayq::mta::TlsPolicy;
using namespace relayq::mta::client_testing;

namespace {

const SmtpReply kNotOffered{0, "TLS required, but the server does not offer STARTTLS"};

// How often `word` occurs in `writes`.
std::size_t count(const std::vector<std::string>& writes, std::string_view word) {
  std::size_t n = 0;
  for (const std::string& write : writes)
    for (std::size_t at = write.find(word); at != std::string::npos; at = write.find(word, at + 1))
      ++n;
  return n;
}

// One pipelined transaction, delivered.
void check_delivers(Server& server) {
  CHECK(server.send(message()) == kGroup);
  CHECK(server.say("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n") == "Hello\r\n.\r\n");
  server.say("250 2.0.0 queued\r\n");
  check_result(server.result(), {kQueued, kQueued});
  CHECK(server.session.state() == ClientState::idle);
}

}  // namespace

// --- STARTTLS accepted -------------------------------------------------------------------

TEST_CASE("client STARTTLS when offered, then EHLO again over TLS", "[client_starttls]") {
  const TlsPolicy policy = GENERATE(TlsPolicy::opportunistic, TlsPolicy::required);
  Server server(GENERATE(0u, 1u));
  INFO(to_string(policy) << ", pieces of " << server.piece);
  server.config->tls = policy;
  server.connect();
  CHECK(server.say("220 mx.test ESMTP\r\n") == "EHLO relay.test\r\n");
  server.now = 2000;
  CHECK(server.say(kStartTlsEhlo) == "STARTTLS\r\n");
  CHECK(server.session.state() == ClientState::greeting);
  CHECK(server.session.deadline_ms() == 2000 + 301000);
  CHECK_FALSE(server.session.take_starttls());

  // The 220 with plaintext behind it, as an injecting server would send (CVE-2011-0411).
  server.now = 3000;
  CHECK(server.say("220 2.0.0 ready\r\n250-mx.test injected\r\n250 8BITMIME\r\n").empty());
  CHECK(server.session.state() == ClientState::tls_handshake);
  CHECK(server.session.deadline_ms() == 3000 + 301000);
  CHECK(server.session.take_starttls());
  CHECK_FALSE(server.session.take_starttls());
  CHECK_FALSE(server.session.tls_active());
  CHECK(server.say("250 more plaintext\r\n").empty());
  CHECK(server.session.state() == ClientState::tls_handshake);

  server.now = 4000;
  CHECK(server.tls_established() == "EHLO relay.test\r\n");
  CHECK(server.session.state() == ClientState::greeting);
  CHECK(server.session.tls_active());
  CHECK(server.session.deadline_ms() == 4000 + 301000);
  // What the server said before TLS is forgotten (RFC 3207 4.2).
  CHECK_FALSE(server.session.pipelining());
  CHECK_FALSE(server.session.extensions().starttls);
  CHECK_FALSE(server.session.size_limit());

  // The EHLO reply over TLS offers STARTTLS again: not taken up a second time.
  CHECK(server.say(kStartTlsEhlo).empty());
  CHECK(server.session.state() == ClientState::idle);
  CHECK_FALSE(server.session.take_starttls());
  CHECK_FALSE(server.session.setup_failure());
  CHECK(server.session.pipelining());
  CHECK(server.session.size_limit() == 1000u);
  check_delivers(server);
  CHECK(count(server.writes, "STARTTLS") == 1);
  CHECK(count(server.writes, "EHLO") == 2);
}

TEST_CASE("client over TLS treats a refused EHLO as it would before TLS", "[client_starttls]") {
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(event_name(event));
  Server server;
  server.handshaking(TlsPolicy::required);
  REQUIRE(server.tls_established() == "EHLO relay.test\r\n");
  const std::string written = happen(server, event);
  if (event == Event::permanent) {
    // HELO over TLS is still TLS: required is met.
    CHECK(written == "HELO relay.test\r\n");
    CHECK(server.say("250 mx.test\r\n").empty());
    CHECK(server.session.state() == ClientState::idle);
    CHECK(server.session.tls_active());
    CHECK_FALSE(server.session.setup_failure());
    return;
  }
  CHECK(written == (event == Event::temporary ? "QUIT\r\n" : ""));
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), reply_for(event, "EHLO reply"));
}

TEST_CASE("client tells its host the TLS states by name", "[client_starttls]") {
  Server server;
  std::vector<std::string> path;
  server.session.set_trace([&path](ClientState from, ClientState to) {
    path.push_back(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
  });
  server.handshaking();
  server.tls_established();
  server.say(kPipelinedEhlo);
  CHECK(path == std::vector<std::string>{"connecting -> greeting", "greeting -> tls_handshake",
                                         "tls_handshake -> greeting", "greeting -> idle"});
  CHECK(to_string(TlsPolicy::off) == "off");
  CHECK(to_string(TlsPolicy::opportunistic) == "opportunistic");
  CHECK(to_string(TlsPolicy::required) == "required");
}

// --- STARTTLS not offered, or not wanted -------------------------------------------------

TEST_CASE("client opportunistic without STARTTLS offered stays in plaintext", "[client_starttls]") {
  Server server;
  server.config->tls = TlsPolicy::opportunistic;
  server.ready(kPipelinedEhlo);
  CHECK(server.writes == std::vector<std::string>{"EHLO relay.test\r\n"});
  CHECK_FALSE(server.session.tls_active());
  CHECK_FALSE(server.session.take_starttls());
  check_delivers(server);
}

TEST_CASE("client required without STARTTLS offered fails the hop, temporarily",
          "[client_starttls]") {
  Server server;
  server.config->tls = TlsPolicy::required;
  server.connect();
  server.say("220 mx.test ESMTP\r\n");
  CHECK(server.say(kPipelinedEhlo) == "QUIT\r\n");
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), kNotOffered);
  CHECK_FALSE(server.session.take_starttls());
  CHECK_FALSE(server.result());
}

TEST_CASE("client HELO fallback: no STARTTLS to be had", "[client_starttls]") {
  const TlsPolicy policy = GENERATE(TlsPolicy::off, TlsPolicy::opportunistic, TlsPolicy::required);
  INFO(to_string(policy));
  Server server;
  server.config->tls = policy;
  server.connect();
  server.say("220 mx.test\r\n");
  REQUIRE(server.say("502 5.5.2 EHLO not implemented\r\n") == "HELO relay.test\r\n");
  const std::string written = server.say("250 mx.test\r\n");
  CHECK(count(server.writes, "STARTTLS") == 0);
  if (policy == TlsPolicy::required) {
    CHECK(written == "QUIT\r\n");
    CHECK(server.session.state() == ClientState::closed);
    REQUIRE(server.session.setup_failure());
    check_reply(*server.session.setup_failure(), kNotOffered);
  } else {
    CHECK(written.empty());
    CHECK(server.session.state() == ClientState::idle);
    CHECK_FALSE(server.session.setup_failure());
  }
}

TEST_CASE("client with TLS off never sends STARTTLS, even when offered", "[client_starttls]") {
  Server server;
  REQUIRE(server.config->tls == TlsPolicy::off);  // the default
  server.ready(kStartTlsEhlo);
  CHECK(server.session.extensions().starttls);
  CHECK_FALSE(server.session.tls_active());
  CHECK_FALSE(server.session.take_starttls());
  check_delivers(server);
  CHECK(count(server.writes, "STARTTLS") == 0);
}

// --- STARTTLS refused or not answered ----------------------------------------------------

TEST_CASE("client STARTTLS refused: plaintext if opportunistic, a failure if required",
          "[client_starttls]") {
  const TlsPolicy policy = GENERATE(TlsPolicy::opportunistic, TlsPolicy::required);
  const std::string refusal =
      GENERATE(std::string("454 4.7.0 TLS not available due to temporary reason"),
               std::string("501 5.5.4 syntax error"), std::string("502 5.5.1 not here"));
  INFO(to_string(policy) << ": " << refusal);
  Server server;
  server.starttls_sent(policy);
  const std::string written = server.say(refusal + "\r\n");
  CHECK_FALSE(server.session.take_starttls());
  CHECK_FALSE(server.session.tls_active());
  if (policy == TlsPolicy::opportunistic) {
    CHECK(written.empty());
    CHECK(server.session.state() == ClientState::idle);
    CHECK_FALSE(server.session.setup_failure());
    // The first EHLO's extensions still hold.
    CHECK(server.session.pipelining());
    CHECK(server.session.size_limit() == 1000u);
    check_delivers(server);
  } else {
    CHECK(written == "QUIT\r\n");
    CHECK(server.session.state() == ClientState::closed);
    REQUIRE(server.session.setup_failure());
    check_reply(*server.session.setup_failure(),
                {0, "TLS required, but STARTTLS was refused: " + refusal});
  }
  CHECK(count(server.writes, "STARTTLS") == 1);
}

TEST_CASE("client STARTTLS reply at every reply class", "[client_starttls]") {
  const TlsPolicy policy = GENERATE(TlsPolicy::opportunistic, TlsPolicy::required);
  const Event event = GENERATE(from_range(std::begin(kEvents), std::end(kEvents)));
  INFO(to_string(policy) << ": " << event_name(event));
  Server server;
  server.starttls_sent(policy);
  const std::string written = happen(server, event);
  CHECK_FALSE(server.session.take_starttls());
  if (!closes(event)) {
    // Refusals: above.
    CHECK(server.session.state() ==
          (policy == TlsPolicy::opportunistic ? ClientState::idle : ClientState::closed));
    return;
  }
  // 421 ends it as anywhere else: no QUIT to a server going away.
  CHECK(written.empty());
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), reply_for(event, "STARTTLS reply"));
}

// --- The handshake -----------------------------------------------------------------------

TEST_CASE("client TLS handshake failure closes with a temporary setup failure",
          "[client_starttls]") {
  Server server;
  server.handshaking(TlsPolicy::opportunistic);
  server.session.tls_failed("certificate verify failed");
  CHECK(server.take().empty());
  CHECK(server.session.state() == ClientState::closed);
  CHECK_FALSE(server.session.tls_active());
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(),
              {0, "TLS handshake failed: certificate verify failed"});
  // Nothing more happens after it.
  server.session.tls_established(server.now);
  CHECK(server.take().empty());
  CHECK(server.session.state() == ClientState::closed);
}

TEST_CASE("client TLS handshake timeout", "[client_starttls]") {
  Server server;
  server.starttls_sent(TlsPolicy::required);
  server.now = 10'000;
  server.say("220 2.0.0 ready\r\n");
  REQUIRE(server.session.take_starttls());
  REQUIRE(server.session.deadline_ms() == 10'000 + 301'000);
  server.session.timed_out(10'000 + 300'999);  // a stale timer
  CHECK(server.session.state() == ClientState::tls_handshake);
  server.now = 10'000 + 301'000;
  server.session.timed_out(server.now);
  CHECK(server.take().empty());
  CHECK(server.session.state() == ClientState::closed);
  REQUIRE(server.session.setup_failure());
  check_reply(*server.session.setup_failure(), {0, "TLS handshake timed out"});
  CHECK(server.session.deadline_ms() == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("client connection lost or quit during the TLS handshake", "[client_starttls]") {
  Server server;
  server.handshaking();
  SECTION("lost") {
    server.session.connection_lost("reset by peer");
    CHECK(server.take().empty());
    CHECK(server.session.state() == ClientState::closed);
    check_reply(*server.session.setup_failure(),
                {0, "connection lost while waiting for the TLS handshake: reset by peer"});
  }
  SECTION("quit") {
    CHECK(server.quit().empty());
    CHECK(server.session.state() == ClientState::closed);
    check_reply(*server.session.setup_failure(), {0, "session closed before the server answered"});
  }
  SECTION("send") {
    CHECK(server.send(message()).empty());
    const SmtpReply not_ready{0, "session not ready for a message"};
    check_result(server.result(), {not_ready, not_ready});
    CHECK(server.session.state() == ClientState::tls_handshake);
  }
}

TEST_CASE("client ignores the TLS calls outside the handshake", "[client_starttls]") {
  Server server;
  server.config->tls = TlsPolicy::opportunistic;
  server.ready(kPipelinedEhlo);
  server.session.tls_established(server.now);
  CHECK(server.take().empty());
  CHECK(server.session.state() == ClientState::idle);
  CHECK_FALSE(server.session.tls_active());
  CHECK_FALSE(server.session.take_starttls());
}

TEST_CASE("client drops a partial plaintext reply that followed the 220", "[client_starttls]") {
  Server server;
  server.starttls_sent(TlsPolicy::opportunistic);
  // Half a line after the 220: were it kept, the EHLO reply over TLS would finish it.
  CHECK(server.say("220 2.0.0 ready\r\n250-PIPELINING").empty());
  REQUIRE(server.session.take_starttls());
  CHECK(server.tls_established() == "EHLO relay.test\r\n");
  CHECK(server.say(lines({"250-mx.test", "250 SIZE 2000"})).empty());
  CHECK(server.session.state() == ClientState::idle);
  CHECK_FALSE(server.session.pipelining());
  CHECK(server.session.size_limit() == 2000u);
}
