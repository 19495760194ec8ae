// Unit tests of the server session's wait for the host's verification of recipients in its
// own domains (no backscatter): which RCPTs wait in state verifying, pipelined input behind
// them, and each verdict's reply and metric reason. No mailbox server: the verdicts are the
// test's.
#include <catch2/catch.hpp>

#include "support/session_harness.hpp"

namespace relayq::mta {
namespace {

using testing::Client;

// A stranger on a listener whose host verifies the recipients of local.test.
Client verifying_client(std::string peer = "192.0.2.7") {
  return Client(std::move(peer), [](ServerSessionConfig& config) {
    config.verifies_recipients = [](std::string_view domain) { return domain == "local.test"; };
  });
}

TEST_CASE("RCPT in a verified domain waits for the host's verdict", "[smtp][verify]") {
  Client client = verifying_client();
  client.start();
  client.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
  CHECK(client.send("RCPT TO:<u@local.test>\r\n").empty());
  CHECK(client.session->state() == SessionState::verifying);
  CHECK(client.session->take_recipient_check() == "u@local.test");
  CHECK_FALSE(client.session->take_recipient_check());  // once
  // Pipelined commands wait behind it, and time does not run out on the client.
  CHECK(client.send("DATA\r\n").empty());
  CHECK(client.session->deadline_ms() == std::numeric_limits<std::int64_t>::max());
  client.session->recipient_checked(RecipientVerdict::exists, client.now);
  CHECK(client.session->take_output() == "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(client.session->state() == SessionState::data);
}

TEST_CASE("Each refusing recipient verdict has its reply and reason; the transaction goes on",
          "[smtp][verify]") {
  struct Case {
    RecipientVerdict verdict;
    std::string reply;
    std::string reason;
  };
  const Case cases[] = {
      {RecipientVerdict::unknown,
       "550 5.1.1 <nobody@local.test>: Recipient address rejected: no such user\r\n",
       "unknown_recipient"},
      {RecipientVerdict::temporary,
       "450 4.2.0 <nobody@local.test>: Recipient address rejected: the mailbox server says try "
       "again later\r\n",
       "unverified_recipient"},
      {RecipientVerdict::unavailable,
       "451 4.4.3 <nobody@local.test>: Recipient address rejected: the mailbox server cannot be "
       "reached, try again later\r\n",
       "unverified_recipient"},
  };
  for (const Case& c : cases) {
    Client client = verifying_client();
    client.start();
    client.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
    client.send("RCPT TO:<nobody@local.test>\r\nRCPT TO:<u@local.test>\r\n");
    client.session->recipient_checked(c.verdict, client.now);
    // The refusal, then the next pipelined RCPT waits for its own verdict.
    CHECK(client.session->take_output() == c.reply);
    CHECK(client.observer->rejected == std::vector<std::string>{c.reason});
    CHECK(client.session->state() == SessionState::verifying);
    CHECK(client.session->take_recipient_check() == "u@local.test");
    client.session->recipient_checked(RecipientVerdict::exists, client.now);
    CHECK(client.session->take_output() == "250 2.1.5 Ok\r\n");
    CHECK(client.send("DATA\r\n") == "354 End data with <CR><LF>.<CR><LF>\r\n");
  }
}

TEST_CASE("Other domains, relay refusals and duplicates are not verified", "[smtp][verify]") {
  Client trusted = verifying_client("127.0.0.1");  // may relay anywhere
  trusted.start();
  trusted.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
  CHECK(trusted.send("RCPT TO:<x@elsewhere.test>\r\n") == "250 2.1.5 Ok\r\n");
  CHECK_FALSE(trusted.session->take_recipient_check());

  Client stranger = verifying_client();
  stranger.start();
  stranger.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
  CHECK(stranger.send("RCPT TO:<x@elsewhere.test>\r\n") == "554 5.7.1 Relay access denied\r\n");
  CHECK_FALSE(stranger.session->take_recipient_check());
  stranger.send("RCPT TO:<u@local.test>\r\n");
  CHECK(stranger.session->take_recipient_check() == "u@local.test");
  stranger.session->recipient_checked(RecipientVerdict::exists, stranger.now);
  stranger.session->take_output();
  CHECK(stranger.send("RCPT TO:<u@local.test>\r\n") == "250 2.1.5 Ok\r\n");  // once only
  CHECK_FALSE(stranger.session->take_recipient_check());
}

TEST_CASE("A shutdown during the verification closes after the verdict", "[smtp][verify]") {
  Client client = verifying_client();
  client.start();
  client.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<u@local.test>\r\n");
  client.session->shut_down();
  CHECK(client.session->state() == SessionState::verifying);
  client.session->recipient_checked(RecipientVerdict::exists, client.now);
  CHECK(client.session->take_output() ==
        "250 2.1.5 Ok\r\n421 4.3.2 mx.relayq.test Service shutting down\r\n");
}

}  // namespace
}  // namespace relayq::mta
