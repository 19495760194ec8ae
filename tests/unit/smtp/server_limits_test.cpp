// Unit tests of the per-session abuse limits: replies of 400 or more (max_errors) and commands
// that move no mail (max_junk_commands) end the session with 421 4.7.0, whatever the timeout
// says; both counts start over with each message queued.
#include <catch2/catch.hpp>

#include "support/session_harness.hpp"

namespace relayq::mta {
namespace {

using testing::Client;
using testing::crlf;

Client limited(std::uint32_t errors, std::uint32_t junk) {
  return Client("127.0.0.1", [&](ServerSessionConfig& config) {
    config.max_errors = errors;
    config.max_junk_commands = junk;
  });
}

TEST_CASE("Too many errors close the session with 421 4.7.0", "[server_session][limits]") {
  Client client = limited(3, 100);
  client.start();
  client.send("EHLO c.test\r\n");
  CHECK(client.send("BOGUS\r\nBOGUS\r\nBOGUS\r\n") ==
        crlf({"500 5.5.1 Command unrecognized", "500 5.5.1 Command unrecognized",
              "500 5.5.1 Command unrecognized"}));
  CHECK_FALSE(client.session->closed());
  CHECK(client.send("RCPT TO:<a@local.test>\r\n") ==
        crlf({"503 5.5.1 Error: need MAIL command",
              "421 4.7.0 mx.relayq.test Too many errors, closing connection"}));
  CHECK(client.session->closed());
}

TEST_CASE("Too many commands without mail close the session", "[server_session][limits]") {
  Client client = limited(20, 4);
  client.start();
  client.send("EHLO c.test\r\n");
  CHECK(client.send("NOOP\r\nRSET\r\nVRFY x\r\nHELP\r\n").find("421") == std::string::npos);
  CHECK(client.send("NOOP\r\n") ==
        crlf({"250 2.0.0 Ok",
              "421 4.7.0 mx.relayq.test Too many commands without mail, closing connection"}));
  CHECK(client.session->closed());
}

TEST_CASE("A queued message starts the counts over", "[server_session][limits]") {
  Client client = limited(2, 2);
  client.start();
  client.send("EHLO c.test\r\nNOOP\r\nNOOP\r\nBOGUS\r\nBOGUS\r\n");
  CHECK_FALSE(client.session->closed());
  client.send("MAIL FROM:<a@c.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\nhi\r\n.\r\n");
  REQUIRE(client.messages.size() == 1);
  client.send("NOOP\r\nNOOP\r\nBOGUS\r\nBOGUS\r\n");
  CHECK_FALSE(client.session->closed());
  client.send("NOOP\r\n");
  CHECK(client.session->closed());
}

}  // namespace
}  // namespace relayq::mta
