// Unit tests of the server session's STARTTLS (RFC 3207) and AUTH (RFC 4954) rules: what EHLO
// offers before and after TLS, the injection case, AUTH exchanges and their verdicts, and
// submission's AUTH before MAIL. No sockets: TLS is the host's, told by tls_established().
#include <catch2/catch.hpp>

#include "mta/smtp/auth_exchange.hpp"
#include "support/session_harness.hpp"

namespace relayq::mta {
namespace {

using testing::Client;
using testing::crlf;

const TlsInfo kTls{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, false, false};

// A session on a listener with a certificate and users; `adjust` changes more.
Client tls_client(const std::function<void(ServerSessionConfig&)>& adjust = {},
                  std::string peer = "127.0.0.1") {
  return Client(std::move(peer), [&](ServerSessionConfig& config) {
    config.starttls = true;
    config.auth = true;
    if (adjust) adjust(config);
  });
}

// EHLO, STARTTLS, the handshake: a session ready for EHLO over TLS.
void through_tls(Client& client) {
  client.start();
  client.send("EHLO c.test\r\n");
  REQUIRE(client.send("STARTTLS\r\n") == "220 2.0.0 Ready to start TLS\r\n");
  REQUIRE(client.session->take_starttls());
  client.session->tls_established(kTls, client.now);
}

std::string plain_response(std::string_view user, std::string_view password) {
  return encode_base64(std::string("\0", 1) + std::string(user) + std::string("\0", 1) +
                       std::string(password));
}

TEST_CASE("EHLO offers STARTTLS before TLS, AUTH only after", "[smtp][tls]") {
  Client client = tls_client();
  client.start();
  const std::string before = client.send("EHLO c.test\r\n");
  CHECK(before.find("250-STARTTLS\r\n") != std::string::npos);
  CHECK(before.find("AUTH") == std::string::npos);
  CHECK(client.send("STARTTLS\r\n") == "220 2.0.0 Ready to start TLS\r\n");
  CHECK(client.session->state() == SessionState::handshake);
  CHECK(client.session->take_starttls());
  CHECK_FALSE(client.session->take_starttls());  // once
  client.session->tls_established(kTls, client.now);
  CHECK(client.session->state() == SessionState::greeting);
  // The greeting was forgotten (RFC 3207 4.2).
  CHECK(client.send("MAIL FROM:<a@c.test>\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  const std::string after = client.send("EHLO c.test\r\n");
  CHECK(after.find("STARTTLS") == std::string::npos);
  CHECK(after.find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
}

TEST_CASE("A second STARTTLS and STARTTLS without a certificate are refused", "[smtp][tls]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  CHECK(client.send("STARTTLS\r\n") == "503 5.5.1 Error: TLS already active\r\n");
  CHECK_FALSE(client.session->take_starttls());

  Client plain;
  plain.start();
  const std::string ehlo = plain.send("EHLO c.test\r\n");
  CHECK(ehlo.find("STARTTLS") == std::string::npos);
  CHECK(plain.send("STARTTLS\r\n") == "502 5.5.1 Command not implemented\r\n");
  CHECK(plain.send("HELP\r\n").find("STARTTLS") == std::string::npos);
}

TEST_CASE("STARTTLS follows the sequencing rules", "[smtp][tls]") {
  Client client = tls_client();
  client.start();
  CHECK(client.send("STARTTLS\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  client.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
  CHECK(client.send("STARTTLS\r\n") == "503 5.5.1 Error: nested MAIL command\r\n");
  client.send("RSET\r\n");
  CHECK(client.send("STARTTLS now\r\n") == "501 5.5.4 Syntax: STARTTLS\r\n");
}

TEST_CASE("Commands pipelined after STARTTLS are never run (CVE-2011-0411)", "[smtp][tls]") {
  for (const std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
    INFO("piece size " << piece);
    Client client = tls_client();
    client.start();
    client.send("EHLO c.test\r\n");
    // In one packet (piece 0); fed a byte at a time the session only sees what has arrived,
    // so the STARTTLS line completes before the rest: then the rest comes after the 220 and
    // is plaintext that the host never feeds (and the session drops).
    const std::string replies =
        client.send("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@c.test>\r\n", piece);
    if (piece == 0) {
      CHECK(replies == "554 5.5.1 Error: nothing may follow STARTTLS before TLS\r\n");
      CHECK(client.session->closed());
      CHECK_FALSE(client.session->take_starttls());
    } else {
      CHECK(replies == "220 2.0.0 Ready to start TLS\r\n");
      CHECK(client.session->take_starttls());
      client.session->tls_established(kTls, client.now);
      CHECK(client.send("NOOP\r\n") == "250 2.0.0 Ok\r\n");
      CHECK(client.send("MAIL FROM:<a@c.test>\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
    }
  }
}

TEST_CASE("The injected bytes after a half-received STARTTLS line are dropped too", "[smtp][tls]") {
  Client client = tls_client();
  client.start();
  client.send("EHLO c.test\r\n");
  CHECK(client.send("START").empty());
  // The line ends in the next read, with a command behind it.
  CHECK(client.send("TLS\r\nRSET\r\n") ==
        "554 5.5.1 Error: nothing may follow STARTTLS before TLS\r\n");
  CHECK(client.session->closed());
}

TEST_CASE("Received records TLS and AUTH (RFC 3848)", "[smtp][tls][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  client.send("MAIL FROM:<a@c.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n");
  client.send("Subject: x\r\n\r\nbody\r\n.\r\n");
  REQUIRE(client.messages.size() == 1);
  const std::string& body = client.messages[0].body;
  CHECK(body.find("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))") !=
        std::string::npos);
  CHECK(body.find(" with ESMTPS id ") != std::string::npos);

  client.send(crlf({"AUTH PLAIN " + plain_response("alice", "pw")}));
  REQUIRE(client.session->take_credentials());
  client.session->credentials_checked(AuthVerdict::accepted, client.now);
  client.send("MAIL FROM:<a@c.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n");
  client.send("body\r\n.\r\n");
  REQUIRE(client.messages.size() == 2);
  CHECK(client.messages[1].body.find(" with ESMTPSA id ") != std::string::npos);
}

TEST_CASE("AUTH PLAIN with an initial response", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  CHECK(client.send(crlf({"AUTH PLAIN " + plain_response("alice", "pw")})).empty());
  CHECK(client.session->state() == SessionState::authenticating);
  const auto credentials = client.session->take_credentials();
  REQUIRE(credentials);
  CHECK(credentials->user == "alice");
  CHECK(credentials->password == "pw");
  // Input waits for the verdict.
  CHECK(client.send("NOOP\r\n").empty());
  client.session->credentials_checked(AuthVerdict::accepted, client.now);
  CHECK(client.settle() == "235 2.7.0 Authentication successful\r\n250 2.0.0 Ok\r\n");
  CHECK(client.session->authenticated_user() == "alice");
  CHECK(client.send("AUTH PLAIN x\r\n") == "503 5.5.1 Error: already authenticated\r\n");
}

TEST_CASE("AUTH PLAIN with an empty challenge, and an authzid", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  CHECK(client.send("AUTH PLAIN\r\n") == "334 \r\n");
  CHECK(client.session->state() == SessionState::auth);
  CHECK(client.send(crlf({encode_base64(std::string("alice\0alice\0pw", 14))})).empty());
  REQUIRE(client.session->take_credentials());
  client.session->credentials_checked(AuthVerdict::accepted, client.now);
  CHECK(client.settle() == "235 2.7.0 Authentication successful\r\n");

  // Acting for somebody else is not allowed.
  Client other = tls_client();
  through_tls(other);
  other.send("EHLO c.test\r\n");
  CHECK(other.send(crlf({"AUTH PLAIN " + encode_base64(std::string("bob\0alice\0pw", 12))})) ==
        "535 5.7.8 Authentication credentials invalid\r\n");
  CHECK_FALSE(other.session->take_credentials());
}

TEST_CASE("AUTH LOGIN asks for the user and the password", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  CHECK(client.send("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6\r\n");
  CHECK(client.send(crlf({encode_base64("alice")})) == "334 UGFzc3dvcmQ6\r\n");
  CHECK(client.send(crlf({encode_base64("secret")})).empty());
  const auto credentials = client.session->take_credentials();
  REQUIRE(credentials);
  CHECK(credentials->user == "alice");
  CHECK(credentials->password == "secret");
  // With the user name as the initial response.
  Client initial = tls_client();
  through_tls(initial);
  initial.send("EHLO c.test\r\n");
  CHECK(initial.send(crlf({"AUTH LOGIN " + encode_base64("alice")})) == "334 UGFzc3dvcmQ6\r\n");
}

TEST_CASE("AUTH exchanges that go wrong", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  SECTION("cancelled with *") {
    client.send("AUTH LOGIN\r\n");
    CHECK(client.send("*\r\n") == "501 5.0.0 Authentication cancelled\r\n");
    CHECK(client.session->state() == SessionState::ready);
    CHECK(client.send("NOOP\r\n") == "250 2.0.0 Ok\r\n");
  }
  SECTION("not base64") {
    CHECK(client.send("AUTH PLAIN !!!!\r\n") ==
          "501 5.5.2 Cannot decode the authentication response\r\n");
    client.send("AUTH LOGIN\r\n");
    CHECK(client.send("YWxpY2U\r\n") ==  // unpadded
          "501 5.5.2 Cannot decode the authentication response\r\n");
    CHECK(client.send("AUTH PLAIN " + encode_base64("no-nuls") + "\r\n") ==
          "501 5.5.2 Cannot decode the authentication response\r\n");
  }
  SECTION("unknown mechanism") {
    CHECK(client.send("AUTH CRAM-MD5\r\n") ==
          "504 5.5.4 Unrecognized authentication mechanism\r\n");
  }
  SECTION("no mechanism") {
    CHECK(client.send("AUTH\r\n") == "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
  }
  SECTION("inside a transaction") {
    client.send("MAIL FROM:<a@c.test>\r\n");
    CHECK(client.send("AUTH PLAIN\r\n") == "503 5.5.1 Error: nested MAIL command\r\n");
  }
  SECTION("a response line too long") {
    client.send("AUTH PLAIN\r\n");
    CHECK(client.send(std::string(600, 'A') + "\r\n") == "500 5.5.2 Line too long\r\n");
    CHECK(client.session->state() == SessionState::ready);
  }
}

TEST_CASE("AUTH is not offered, nor taken, in plaintext", "[smtp][auth]") {
  Client client = tls_client();
  client.start();
  client.send("EHLO c.test\r\n");
  CHECK(client.send(crlf({"AUTH PLAIN " + plain_response("alice", "pw")})) ==
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  CHECK_FALSE(client.session->take_credentials());
  // Unless the listener says its network may carry it.
  Client trusting = tls_client([](ServerSessionConfig& c) { c.auth_without_tls = true; });
  trusting.start();
  CHECK(trusting.send("EHLO c.test\r\n").find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
  CHECK(trusting.send(crlf({"AUTH PLAIN " + plain_response("alice", "pw")})).empty());
  CHECK(trusting.session->take_credentials());
  // Without users there is no AUTH at all.
  Client none;
  none.start();
  CHECK(none.send("EHLO c.test\r\n").find("AUTH") == std::string::npos);
  CHECK(none.send("AUTH PLAIN\r\n") == "502 5.5.1 Command not implemented\r\n");
}

TEST_CASE("Failed AUTH: 535, throttled 454, and 421 after too many", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  const std::string attempt = crlf({"AUTH PLAIN " + plain_response("alice", "bad")});
  client.send(attempt);
  client.session->credentials_checked(AuthVerdict::rejected, client.now);
  CHECK(client.settle() == "535 5.7.8 Authentication credentials invalid\r\n");
  client.send(attempt);
  client.session->credentials_checked(AuthVerdict::throttled, client.now);
  CHECK(client.settle() ==
        "454 4.7.0 Too many failed authentication attempts, try again later\r\n");
  client.send(attempt);
  client.session->credentials_checked(AuthVerdict::rejected, client.now);
  client.settle();
  client.send(attempt);
  client.session->credentials_checked(AuthVerdict::rejected, client.now);
  CHECK(client.settle() ==
        "421 4.7.0 mx.relayq.test Too many failed authentication attempts, closing\r\n");
  CHECK(client.session->closed());
}

TEST_CASE("AUTH that cannot be checked now: 454, and no failure counted", "[smtp][auth]") {
  Client client = tls_client();
  through_tls(client);
  client.send("EHLO c.test\r\n");
  const std::string attempt = crlf({"AUTH PLAIN " + plain_response("alice", "pw")});
  for (int i = 0; i < 5; ++i) {  // more than max_auth_failures: none of them is the client's
    client.send(attempt);
    REQUIRE(client.session->take_credentials());
    client.session->credentials_checked(AuthVerdict::unavailable, client.now);
    CHECK(client.settle() == "454 4.7.0 Temporary authentication failure, try again later\r\n");
    CHECK(client.session->authenticated_user().empty());
  }
  CHECK_FALSE(client.session->closed());
  client.send(attempt);
  client.session->credentials_checked(AuthVerdict::accepted, client.now);
  CHECK(client.settle() == "235 2.7.0 Authentication successful\r\n");
  CHECK(client.session->authenticated_user() == "alice");
}

TEST_CASE("Submission: MAIL needs AUTH first; then any domain may be reached", "[smtp][auth]") {
  // A client outside relay.networks, on a listener that requires AUTH.
  Client client = tls_client([](ServerSessionConfig& c) { c.auth_required = true; }, "192.0.2.7");
  through_tls(client);
  client.send("EHLO c.test\r\n");
  CHECK(client.send("MAIL FROM:<a@c.test>\r\n") == "530 5.7.0 Authentication required\r\n");
  CHECK(client.observer->rejected == std::vector<std::string>{"auth_required"});
  client.send(crlf({"AUTH PLAIN " + plain_response("alice", "pw")}));
  REQUIRE(client.session->take_credentials());
  client.session->credentials_checked(AuthVerdict::accepted, client.now);
  client.settle();
  CHECK(client.send("MAIL FROM:<a@c.test> AUTH=<>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(client.send("RCPT TO:<b@far.example>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE("Strangers still may not relay on a listener with AUTH", "[smtp][auth]") {
  Client client = tls_client({}, "192.0.2.7");
  through_tls(client);
  client.send("EHLO c.test\r\n");
  client.send("MAIL FROM:<a@c.test>\r\n");
  CHECK(client.send("RCPT TO:<b@far.example>\r\n") == "554 5.7.1 Relay access denied\r\n");
  CHECK(client.send("RCPT TO:<b@local.test>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE("base64 is strict", "[smtp][auth]") {
  CHECK(decode_base64("YWxpY2U=") == "alice");
  CHECK(decode_base64("") == "");
  CHECK(decode_base64("YQ==") == "a");
  CHECK_FALSE(decode_base64("YQ="));
  CHECK_FALSE(decode_base64("Y=Q="));
  CHECK_FALSE(decode_base64("YQ==YQ=="));
  CHECK_FALSE(decode_base64("Y Q=="));
  CHECK(encode_base64("alice") == "YWxpY2U=");
}

}  // namespace
}  // namespace relayq::mta
