// Unit tests of the server session's wait for the host's sender checks (reverse DNS, SPF): who
// is checked, MAIL held in state checking with pipelined input behind it, and each verdict's
// reply and metric reason. No DNS: the verdicts are the test's.
#include <catch2/catch.hpp>

#include "support/session_harness.hpp"

namespace relayq::mta {
namespace {

using testing::Client;

// A stranger (outside relay.networks 127.0.0.0/8) on a listener whose host checks senders.
Client checked_client(std::string peer = "192.0.2.7") {
  return Client(std::move(peer), [](ServerSessionConfig& config) {
    config.check_senders = true;
    config.auth = true;
    config.auth_without_tls = true;
  });
}

TEST_CASE("MAIL from a stranger waits for the sender check", "[smtp][policy]") {
  Client client = checked_client();
  client.start();
  client.send("EHLO c.test\r\n");
  CHECK(client.send("MAIL FROM:<a@c.test>\r\n").empty());
  CHECK(client.session->state() == SessionState::checking);
  const auto check = client.session->take_sender_check();
  REQUIRE(check);
  CHECK(check->sender == "a@c.test");
  CHECK(check->helo == "c.test");
  CHECK_FALSE(client.session->take_sender_check());  // once
  // Pipelined commands wait behind the check, and time does not run out on the client.
  CHECK(client.send("RCPT TO:<u@local.test>\r\nDATA\r\n").empty());
  CHECK(client.session->deadline_ms() == std::numeric_limits<std::int64_t>::max());
  client.session->sender_checked(SenderVerdict::accepted, "", client.now);
  CHECK(client.session->take_output() ==
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(client.session->state() == SessionState::data);
}

TEST_CASE("The null sender is checked with the HELO name", "[smtp][policy]") {
  Client client = checked_client();
  client.start();
  client.send("HELO relay.c.test\r\n");
  client.send("MAIL FROM:<>\r\n");
  const auto check = client.session->take_sender_check();
  REQUIRE(check);
  CHECK(check->sender.empty());
  CHECK(check->helo == "relay.c.test");
}

TEST_CASE("Each refusing verdict has its reply and reason, and the session goes on",
          "[smtp][policy]") {
  struct Case {
    SenderVerdict verdict;
    std::string detail;
    std::string reply;
    std::string reason;
  };
  const Case cases[] = {
      {SenderVerdict::spf_failed, "SPF fail: c.test does not allow 192.0.2.7",
       "550 5.7.23 SPF fail: c.test does not allow 192.0.2.7\r\n", "spf"},
      {SenderVerdict::spf_temporary, "",
       "451 4.7.24 SPF check of the sender failed temporarily, try again later\r\n", "spf"},
      {SenderVerdict::rdns_failed, "192.0.2.7",
       "550 5.7.25 Client address 192.0.2.7 has no forward-confirmed reverse DNS name\r\n", "rdns"},
      {SenderVerdict::rdns_temporary, "192.0.2.7",
       "450 4.7.25 Reverse DNS of client address 192.0.2.7 failed temporarily, try again "
       "later\r\n",
       "rdns"},
  };
  for (const Case& c : cases) {
    Client client = checked_client();
    client.start();
    client.send("EHLO c.test\r\n");
    client.send("MAIL FROM:<a@c.test>\r\nRCPT TO:<u@local.test>\r\n");
    client.session->sender_checked(c.verdict, c.detail, client.now);
    // The RCPT that was pipelined behind the refused MAIL finds no transaction.
    CHECK(client.session->take_output() == c.reply + "503 5.5.1 Error: need MAIL command\r\n");
    CHECK(client.observer->rejected == std::vector<std::string>{c.reason});
    CHECK(client.session->state() == SessionState::ready);
    // A second MAIL is checked again.
    client.send("MAIL FROM:<b@c.test>\r\n");
    CHECK(client.session->state() == SessionState::checking);
  }
}

TEST_CASE("Clients with relay rights are not checked", "[smtp][policy]") {
  Client trusted = checked_client("127.0.0.1");  // inside relay.networks
  trusted.start();
  trusted.send("EHLO c.test\r\n");
  CHECK(trusted.send("MAIL FROM:<a@c.test>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK_FALSE(trusted.session->take_sender_check());

  Client unchecked("192.0.2.7");  // check_senders off
  unchecked.start();
  unchecked.send("EHLO c.test\r\n");
  CHECK(unchecked.send("MAIL FROM:<a@c.test>\r\n") == "250 2.1.0 Ok\r\n");
}

TEST_CASE("A shutdown during the check closes after the verdict", "[smtp][policy]") {
  Client client = checked_client();
  client.start();
  client.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n");
  client.session->shut_down();
  CHECK(client.session->state() == SessionState::checking);
  client.session->sender_checked(SenderVerdict::accepted, "", client.now);
  CHECK(client.session->take_output() ==
        "250 2.1.0 Ok\r\n421 4.3.2 mx.relayq.test Service shutting down\r\n");
  CHECK(client.session->closed());
}

}  // namespace
}  // namespace relayq::mta
