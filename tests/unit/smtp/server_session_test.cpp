// ServerSession: every command and error path, pipelining, DATA and BDAT, smuggling, limits,
// storage results, timeouts and shutdown.
#include <catch2/catch.hpp>

#include "queue/rfc5322_date.hpp"

#include <limits>
#include <random>
#include <string>

#include "mta/smtp/received_header.hpp"
#include "support/session_harness.hpp"

using relayq::mta::format_received;
using relayq::mta::ReceivedTrace;
using relayq::mta::ServerSessionConfig;
using relayq::mta::SessionState;
using relayq::mta::testing::Client;
using relayq::mta::testing::content_of;
using relayq::mta::testing::crlf;
using relayq::queue::format_rfc5322_date;
namespace queue = relayq::queue;
namespace dns = relayq::dns;

namespace {

const std::string kEhloReply =
    crlf({"250-mx.relayq.test", "250-PIPELINING", "250-SIZE 10000", "250-8BITMIME", "250-SMTPUTF8",
          "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250 HELP"});

// Content of `size` bytes in 100-byte lines.
std::string lines_of(std::size_t size) {
  std::string content;
  while (content.size() < size) content += std::string(98, 'y') + "\r\n";
  return content;
}

// A client that has been greeted and said EHLO.
Client greeted(std::string peer = "127.0.0.1",
               const std::function<void(ServerSessionConfig&)>& adjust = {}) {
  Client client(std::move(peer), adjust);
  client.start();
  client.send("EHLO client.test\r\n");
  return client;
}

// Greeted, with MAIL and one accepted RCPT.
Client in_transaction(std::string_view mail = "MAIL FROM:<a@x.test>") {
  Client client = greeted();
  client.send(crlf({mail, "RCPT TO:<b@local.test>"}));
  return client;
}

}  // namespace

// --- Greeting and simple commands --------------------------------------------------------

TEST_CASE("banner and EHLO reply", "[server_session]") {
  Client client;
  CHECK(client.start() == "220 mx.relayq.test ESMTP relayq\r\n");
  CHECK(client.session->state() == SessionState::greeting);
  CHECK(client.send("EHLO client.test\r\n") == kEhloReply);
  CHECK(client.session->state() == SessionState::ready);
}

TEST_CASE("HELO gives a plain 250", "[server_session]") {
  Client client;
  client.start();
  CHECK(client.send("HELO client.test\r\n") == "250 mx.relayq.test\r\n");
}

TEST_CASE("EHLO and HELO need an argument", "[server_session]") {
  Client client;
  client.start();
  CHECK(client.send("EHLO\r\nHELO \r\n") ==
        crlf({"501 5.5.4 Syntax: EHLO hostname", "501 5.5.4 Syntax: HELO hostname"}));
  CHECK(client.session->state() == SessionState::greeting);
}

TEST_CASE("verbs are case-insensitive", "[server_session]") {
  Client client;
  client.start();
  CHECK(client.send(
            crlf({"ehlo client.test", "mail from:<a@x.test>", "rCpT To:<b@local.test>", "NoOp"})) ==
        kEhloReply + crlf({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok"}));
}

TEST_CASE("the session answers RSET, NOOP, VRFY, EXPN, HELP and unknown verbs",
          "[server_session]") {
  Client client = greeted();
  CHECK(client.send(
            crlf({"RSET", "NOOP", "NOOP anything", "VRFY someone", "VRFY", "EXPN list", "HELP",
                  "STARTTLS", "AUTH PLAIN AAAA", "FROB", "", "RSET now", "DATA now"})) ==
        crlf({"250 2.0.0 Ok", "250 2.0.0 Ok", "250 2.0.0 Ok",
              "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
              "501 5.5.4 Syntax: VRFY address", "502 5.5.1 Command not implemented",
              "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
              "502 5.5.1 Command not implemented", "502 5.5.1 Command not implemented",
              "500 5.5.1 Command unrecognized", "500 5.5.1 Command unrecognized",
              "501 5.5.4 Syntax: RSET", "503 5.5.1 Error: need MAIL command"}));
}

TEST_CASE("QUIT closes and later input is ignored", "[server_session]") {
  Client client = greeted();
  CHECK(client.send("QUIT\r\nNOOP\r\n") == "221 2.0.0 Bye\r\n");
  CHECK(client.session->closed());
  CHECK(client.send("NOOP\r\n").empty());
}

// --- Sequencing --------------------------------------------------------------------------

TEST_CASE("SMTP commands out of sequence", "[server_session]") {
  Client client;
  client.start();
  CHECK(client.send(crlf({"MAIL FROM:<a@x.test>", "RCPT TO:<b@local.test>", "DATA"})) ==
        crlf({"503 5.5.1 Error: send HELO/EHLO first", "503 5.5.1 Error: send HELO/EHLO first",
              "503 5.5.1 Error: send HELO/EHLO first"}));
  client.send("EHLO client.test\r\n");
  CHECK(client.send(crlf({"RCPT TO:<b@local.test>", "DATA", "MAIL FROM:<a@x.test>",
                          "MAIL FROM:<a@x.test>", "DATA"})) ==
        crlf({"503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command",
              "250 2.1.0 Ok", "503 5.5.1 Error: nested MAIL command",
              "554 5.5.1 No valid recipients"}));
  CHECK(client.session->state() == SessionState::mail);
}

TEST_CASE("RSET, EHLO and HELO end the transaction", "[server_session]") {
  const std::string reset =
      GENERATE(std::string("RSET"), std::string("EHLO again.test"), std::string("HELO again.test"));
  Client client = in_transaction();
  client.send(reset + "\r\n");
  CHECK(client.session->state() == SessionState::ready);
  CHECK(client.send("RCPT TO:<b@local.test>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
}

TEST_CASE("RSET before the greeting keeps the session ungreeted", "[server_session]") {
  Client client;
  client.start();
  CHECK(client.send("RSET\r\nMAIL FROM:<>\r\n") ==
        crlf({"250 2.0.0 Ok", "503 5.5.1 Error: send HELO/EHLO first"}));
}

// --- MAIL --------------------------------------------------------------------------------

TEST_CASE("MAIL parameters", "[server_session][mail]") {
  struct Case {
    std::string command;
    std::string reply;
  };
  const Case c = GENERATE(
      Case{"MAIL FROM:<a@x.test> SIZE=10000", "250 2.1.0 Ok"},
      Case{"MAIL FROM:<a@x.test> SIZE=10001",
           "552 5.3.4 Message size exceeds fixed maximum message size"},
      Case{"MAIL FROM:<a@x.test> SIZE=999999999999999999999999",
           "552 5.3.4 Message size exceeds fixed maximum message size"},
      Case{"MAIL FROM:<a@x.test> SIZE=1k", "501 5.5.4 Bad SIZE parameter"},
      Case{"MAIL FROM:<a@x.test> SIZE", "501 5.5.4 Bad SIZE parameter"},
      Case{"MAIL FROM:<a@x.test> BODY=7BIT", "250 2.1.0 Ok"},
      Case{"MAIL FROM:<a@x.test> body=8bitmime", "250 2.1.0 Ok"},
      Case{"MAIL FROM:<a@x.test> BODY=BINARYMIME", "501 5.5.4 Bad BODY parameter"},
      Case{"MAIL FROM:<a@x.test> SMTPUTF8", "250 2.1.0 Ok"},
      Case{"MAIL FROM:<a@x.test> SMTPUTF8=yes", "501 5.5.4 Bad SMTPUTF8 parameter"},
      Case{"MAIL FROM:<a@x.test> RET=FULL", "555 5.5.4 Unsupported option: RET"},
      Case{"MAIL FROM:<a@x.test> =x", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      Case{"MAIL TO:<a@x.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      Case{"MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      Case{"MAIL FROM:a@x.test", "501 5.1.7 Bad sender address syntax"},
      Case{"MAIL FROM:<a@x..test>", "501 5.1.7 Bad sender address syntax"},
      Case{"MAIL FROM:<user>", "501 5.1.7 Bad sender address syntax"},
      Case{"MAIL FROM:<>", "250 2.1.0 Ok"}, Case{"MAIL FROM:<@hop.test:a@x.test>", "250 2.1.0 Ok"},
      Case{"MAIL FROM:<j\xC3\xB6rg@x.test>", "553 5.6.7 Non-ASCII address requires SMTPUTF8"},
      Case{"MAIL FROM:<j\xC3\xB6rg@x.test> SMTPUTF8", "250 2.1.0 Ok"});
  Client client = greeted();
  CHECK(client.send(c.command + "\r\n") == c.reply + "\r\n");
  CHECK((client.session->state() == SessionState::mail) == (c.reply == "250 2.1.0 Ok"));
}

TEST_CASE("MAIL SIZE over the limit is counted as a size rejection", "[server_session][mail]") {
  Client client = greeted();
  client.send("MAIL FROM:<a@x.test> SIZE=20000\r\n");
  CHECK(client.observer->rejected == std::vector<std::string>{"size"});
}

TEST_CASE("ESMTP parameters need EHLO", "[server_session][mail]") {
  Client client;
  client.start();
  client.send("HELO client.test\r\n");
  CHECK(client.send("MAIL FROM:<a@x.test> SIZE=10\r\n") ==
        "555 5.5.4 Unsupported option: SIZE\r\n");
}

// --- RCPT --------------------------------------------------------------------------------

TEST_CASE("RCPT errors", "[server_session][rcpt]") {
  struct Case {
    std::string command;
    std::string reply;
  };
  const Case c = GENERATE(
      Case{"RCPT TO:<c@elsewhere.test>", "250 2.1.5 Ok"},
      Case{"RCPT TO:<c@[192.0.2.1]>", "250 2.1.5 Ok"},
      Case{"RCPT TO:c@local.test", "501 5.1.3 Bad recipient address syntax"},
      Case{"RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"},
      Case{"RCPT TO:<postmaster>", "501 5.1.3 Recipient address must include a domain"},
      Case{"RCPT FROM:<c@local.test>", "501 5.5.4 Syntax: RCPT TO:<address>"},
      Case{"RCPT", "501 5.5.4 Syntax: RCPT TO:<address>"},
      Case{"RCPT TO:<c@local.test> NOTIFY=NEVER", "555 5.5.4 Unsupported option: NOTIFY"},
      Case{"RCPT TO:<\xC3\xBC@local.test>", "553 5.6.7 Non-ASCII address requires SMTPUTF8"});
  Client client = in_transaction();
  CHECK(client.send(c.command + "\r\n") == c.reply + "\r\n");
}

TEST_CASE("UTF-8 recipients after MAIL ... SMTPUTF8", "[server_session][rcpt]") {
  Client client = in_transaction("MAIL FROM:<a@x.test> SMTPUTF8");
  CHECK(client.send("RCPT TO:<\xC3\xBC@local.test>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE("too many recipients in one transaction", "[server_session][rcpt]") {
  Client client = in_transaction();
  CHECK(client.send(crlf({"RCPT TO:<c@local.test>", "RCPT TO:<b@local.test>",
                          "RCPT TO:<d@local.test>", "RCPT TO:<e@local.test>"})) ==
        crlf({"250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "452 4.5.3 Too many recipients"}));
  CHECK(client.observer->rejected == std::vector<std::string>{"too_many_recipients"});
  client.send("DATA\r\nx\r\n.\r\n");
  REQUIRE(client.messages.size() == 1);
  CHECK(client.messages[0].envelope.recipients.size() == 3);  // the duplicate counted once
}

TEST_CASE("relay rules decide at RCPT", "[server_session][rcpt]") {
  Client client = greeted("192.0.2.7");
  client.send("MAIL FROM:<a@x.test>\r\n");
  CHECK(client.send(crlf({"RCPT TO:<c@elsewhere.test>", "RCPT TO:<c@LOCAL.test>"})) ==
        crlf({"554 5.7.1 Relay access denied", "250 2.1.5 Ok"}));
  CHECK(client.observer->rejected == std::vector<std::string>{"relay_denied"});
}

TEST_CASE("source routing in local parts is for clients with relay rights",
          "[server_session][rcpt]") {
  const std::string_view routed[] = {
      "user%other.test@local.test",     "\"user@other.test\"@local.test",
      "other.test!user@local.test",     "\"user%other.test\"@local.test",
      "\"user@other.test\"@LOCAL.TEST", "user%other.test%local.test@local.test",
  };
  for (const std::string_view address : routed) {
    INFO(address);
    Client stranger = greeted("192.0.2.7");
    stranger.send("MAIL FROM:<a@x.test>\r\n");
    CHECK(stranger.send("RCPT TO:<" + std::string(address) + ">\r\n") ==
          "550 5.7.1 Relay access denied: no routing ('%', '!', '@') in the local part\r\n");
    CHECK(stranger.observer->rejected == std::vector<std::string>{"relay_denied"});
    CHECK(stranger.send("RCPT TO:<user@local.test>\r\n") == "250 2.1.5 Ok\r\n");

    Client trusted = greeted("127.0.0.1");
    trusted.send("MAIL FROM:<a@x.test>\r\n");
    CHECK(trusted.send("RCPT TO:<" + std::string(address) + ">\r\n") == "250 2.1.5 Ok\r\n");

    Client allowed = greeted("192.0.2.7", [](ServerSessionConfig& config) {
      config.relay = std::make_shared<relayq::policy::RelayRules>(
          std::vector<dns::Cidr>{}, std::vector<std::string>{"local.test"}, true);
    });
    allowed.send("MAIL FROM:<a@x.test>\r\n");
    CHECK(allowed.send("RCPT TO:<" + std::string(address) + ">\r\n") == "250 2.1.5 Ok\r\n");
  }
}

TEST_CASE("without relay rules nobody relays", "[server_session][rcpt]") {
  Client client = greeted("127.0.0.1", [](ServerSessionConfig& config) { config.relay.reset(); });
  client.send("MAIL FROM:<a@x.test>\r\n");
  CHECK(client.send("RCPT TO:<c@local.test>\r\n") == "554 5.7.1 Relay access denied\r\n");
}

// --- Command lines -----------------------------------------------------------------------

TEST_CASE("command lines are limited to 512 bytes with CRLF", "[server_session][limits]") {
  const std::size_t piece = GENERATE(0, 1, 100);
  Client client = greeted();
  const std::string longest = "NOOP " + std::string(505, 'x') + "\r\n";
  REQUIRE(longest.size() == 512);
  const std::string too_long = "NOOP " + std::string(506, 'x') + "\r\n";
  const std::string huge = "NOOP " + std::string(100000, 'x') + "\r\n";
  CHECK(
      client.send(longest + too_long + huge + "NOOP\r\n", piece) ==
      crlf({"250 2.0.0 Ok", "500 5.5.2 Line too long", "500 5.5.2 Line too long", "250 2.0.0 Ok"}));
}

TEST_CASE("command lines need CRLF and no NUL or bare CR", "[server_session][limits]") {
  const std::string line = GENERATE(std::string("NOOP\n"), std::string("NO\0OP\r\n", 7),
                                    std::string("NOOP\rRSET\r\n"), std::string("\n"));
  Client client = greeted();
  CHECK(client.send(line + "NOOP\r\n") ==
        crlf({"500 5.5.2 Command lines must end in CRLF and hold no bare CR or NUL",
              "250 2.0.0 Ok"}));
}

// --- DATA --------------------------------------------------------------------------------

TEST_CASE("a message through DATA", "[server_session][data]") {
  Client client = in_transaction("MAIL FROM:<a@x.test> BODY=8BITMIME");
  CHECK(client.send("DATA\r\n") == "354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(client.session->state() == SessionState::data);
  CHECK(client.send("Subject: hi\r\n\r\n..dot\r\n.\r\n") ==
        "250 2.0.0 Ok: queued as 0000000000001001\r\n");
  CHECK(client.session->state() == SessionState::ready);
  REQUIRE(client.messages.size() == 1);
  const queue::Message& message = client.messages[0];
  const queue::Envelope& envelope = message.envelope;
  CHECK(envelope.id == 0x1001);
  CHECK(envelope.sender == "a@x.test");
  REQUIRE(envelope.recipients.size() == 1);
  CHECK(envelope.recipients[0].address == "b@local.test");
  CHECK(envelope.recipients[0].state == queue::RecipientState::pending);
  CHECK(envelope.listener == "127.0.0.1:2525");
  CHECK(envelope.client_address == "127.0.0.1");
  CHECK(envelope.helo == "client.test");
  CHECK(envelope.eight_bit_mime);
  CHECK_FALSE(envelope.smtputf8);
  CHECK(envelope.size == message.body.size());
  CHECK(envelope.received_ms > 1600000000000);
  CHECK(message.body.rfind(
            "Received: from client.test ([127.0.0.1])\r\n\tby mx.relayq.test (relayq) with ESMTP "
            "id 0000000000001001\r\n\tfor <b@local.test>;\r\n\t",
            0) == 0);
  CHECK(content_of(message) == "Subject: hi\r\n\r\n.dot\r\n");
  REQUIRE(client.observer->accepted.size() == 1);
  CHECK(client.observer->accepted[0].id == envelope.id);
  CHECK(client.observer->accepted[0].size == envelope.size);
}

TEST_CASE("the Received header names the protocol and a single recipient", "[server_session]") {
  SECTION("HELO is SMTP") {
    Client client;
    client.start();
    client.send(crlf({"HELO old.test", "MAIL FROM:<>", "RCPT TO:<b@local.test>",
                      "RCPT TO:<c@local.test>", "DATA", "x", "."}));
    REQUIRE(client.messages.size() == 1);
    CHECK(client.messages[0].body.rfind("Received: from old.test ([127.0.0.1])\r\n\tby "
                                        "mx.relayq.test (relayq) with SMTP id 0000000000001001;",
                                        0) == 0);
  }
  SECTION("SMTPUTF8 is UTF8SMTP") {
    Client client = in_transaction("MAIL FROM:<a@x.test> SMTPUTF8");
    client.send(crlf({"DATA", "x", "."}));
    REQUIRE(client.messages.size() == 1);
    CHECK(client.messages[0].body.find("with UTF8SMTP id") != std::string::npos);
    CHECK(client.messages[0].envelope.smtputf8);
  }
}

TEST_CASE("Received header format", "[server_session]") {
  CHECK(format_rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(format_rfc5322_date(1700000000123) == "Tue, 14 Nov 2023 22:13:20 +0000");
  const ReceivedTrace trace{.helo = "[IPv6:2001:db8::5]",
                            .client = *dns::IpAddress::parse("2001:db8::5"),
                            .hostname = "mx.test",
                            .protocol = "ESMTP",
                            .id = 0xABC,
                            .recipient = "",
                            .time_ms = 0};
  CHECK(format_received(trace) ==
        "Received: from [IPv6:2001:db8::5] ([IPv6:2001:db8::5])\r\n\tby mx.test (relayq) with "
        "ESMTP id 0000000000000ABC;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n");
}

TEST_CASE("content faults refuse the message and end the transaction", "[server_session][data]") {
  struct Case {
    std::string content;
    std::string reply;
    std::string reason;
  };
  const Case c = GENERATE(
      Case{lines_of(10100), "552 5.3.4 Message size exceeds fixed maximum message size", "size"},
      Case{std::string(999, 'x') + "\r\n", "500 5.5.2 Text line too long", "line_too_long"},
      Case{"bare\nLF\r\n", "550 5.6.0 Message contains bare CR, bare LF or NUL", "bad_data"},
      Case{"bare\rCR\r\n", "550 5.6.0 Message contains bare CR, bare LF or NUL", "bad_data"},
      Case{std::string("N\0L\r\n", 5), "550 5.6.0 Message contains bare CR, bare LF or NUL",
           "bad_data"});
  const std::size_t piece = GENERATE(0, 1);
  Client client = in_transaction();
  CHECK(
      client.send("DATA\r\n" + c.content + ".\r\nRCPT TO:<b@local.test>\r\n", piece) ==
      crlf({"354 End data with <CR><LF>.<CR><LF>", c.reply, "503 5.5.1 Error: need MAIL command"}));
  CHECK(client.messages.empty());
  CHECK(client.observer->rejected == std::vector<std::string>{c.reason});
}

TEST_CASE("a message of exactly the maximum size is taken", "[server_session][data]") {
  Client client = in_transaction();
  const std::string content = lines_of(10000);
  client.send("DATA\r\n" + content + ".\r\n");
  REQUIRE(client.messages.size() == 1);
  CHECK(content_of(client.messages[0]) == content);
}

// The smuggling sequences of CVE-2023-51764/5/6: never an end of data, and nothing after them
// may become a command or a second message.
TEST_CASE("no message can be smuggled", "[server_session][data][smuggling]") {
  const std::string sequence =
      GENERATE(std::string("\n.\n"), std::string("\n.\r\n"), std::string("\r.\r"),
               std::string("\r.\r\n"), std::string("\r\n.\n"), std::string("\r\n.\r"),
               std::string("\r\n\0.\r\n", 6), std::string("\r\n.\0\r\n", 6));
  const std::size_t piece = GENERATE(0, 1, 3);
  Client client = greeted();
  const std::string smuggled =
      "MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nsmuggled\r\n";
  const std::string output = client.send(
      crlf({"MAIL FROM:<a@x.test>", "RCPT TO:<b@local.test>", "DATA", "Subject: first", ""}) +
          "text" + sequence + smuggled + "\r\n.\r\n" +
          crlf({"MAIL FROM:<c@x.test>", "RCPT TO:<d@local.test>", "DATA", "clean", ".", "QUIT"}),
      piece);
  CHECK(output == crlf({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                        "550 5.6.0 Message contains bare CR, bare LF or NUL", "250 2.1.0 Ok",
                        "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                        "250 2.0.0 Ok: queued as 0000000000001002", "221 2.0.0 Bye"}));
  REQUIRE(client.messages.size() == 1);
  CHECK(client.messages[0].envelope.sender == "c@x.test");
  CHECK(content_of(client.messages[0]) == "clean\r\n");
}

// --- Pipelining --------------------------------------------------------------------------

TEST_CASE("any split of the input gives the same replies and messages",
          "[server_session][pipelining]") {
  const std::string dialogue =
      crlf({"EHLO client.test", "MAIL FROM:<a@x.test> SIZE=100", "RCPT TO:<b@local.test>",
            "RCPT TO:<c@far.test>", "DATA", "Subject: one", "..dot", ".", "MAIL FROM:<>",
            "RCPT TO:<d@local.test>", "BDAT 10"}) +
      "0123456789BDAT 4 LAST\r\nab\r\n" + crlf({"NOOP " + std::string(600, 'z'), "QUIT"});
  Client whole;
  whole.start();
  const std::string expected = whole.send(dialogue);
  CHECK(expected == kEhloReply + crlf({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                                       "354 End data with <CR><LF>.<CR><LF>",
                                       "250 2.0.0 Ok: queued as 0000000000001001", "250 2.1.0 Ok",
                                       "250 2.1.5 Ok", "250 2.0.0 10 octets received",
                                       "250 2.0.0 Ok: queued as 0000000000001002",
                                       "500 5.5.2 Line too long", "221 2.0.0 Bye"}));
  REQUIRE(whole.messages.size() == 2);
  CHECK(content_of(whole.messages[0]) == "Subject: one\r\n.dot\r\n");
  CHECK(content_of(whole.messages[1]) == "0123456789ab\r\n");

  std::mt19937 random(42);
  for (int round = 0; round < 40; ++round) {
    Client split;
    split.start();
    std::string output;
    for (std::size_t pos = 0; pos < dialogue.size();) {
      // Byte by byte in the first round, then random pieces.
      const std::size_t piece = round == 0 ? 1 : 1 + random() % 40;
      output += split.send(dialogue.substr(pos, piece));
      pos += piece;
    }
    CHECK(output == expected);
    REQUIRE(split.messages.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(content_of(split.messages[i]) == content_of(whole.messages[i]));
      CHECK(split.messages[i].envelope.sender == whole.messages[i].envelope.sender);
    }
  }
}

// --- BDAT --------------------------------------------------------------------------------

TEST_CASE("a message in BDAT chunks", "[server_session][bdat]") {
  const std::string input = "BDAT 11\r\nSubject: x\rBDAT 9 LAST\r\n\n\r\nbody\r\n";
  for (std::size_t piece = 0; piece < 12; ++piece) {
    Client client = in_transaction();
    CHECK(client.send(input, piece) ==
          crlf({"250 2.0.0 11 octets received", "250 2.0.0 Ok: queued as 0000000000001001"}));
    REQUIRE(client.messages.size() == 1);
    CHECK(content_of(client.messages[0]) == "Subject: x\r\n\r\nbody\r\n");
    CHECK(client.messages[0].body.find("with ESMTP") != std::string::npos);
  }
}

TEST_CASE("BDAT keeps dots and completes a last line", "[server_session][bdat]") {
  Client client = in_transaction();
  CHECK(client.send("BDAT 7\r\n.\r\n..xyBDAT 0 LAST\r\n") ==
        crlf({"250 2.0.0 7 octets received", "250 2.0.0 Ok: queued as 0000000000001001"}));
  REQUIRE(client.messages.size() == 1);
  CHECK(content_of(client.messages[0]) == ".\r\n..xy\r\n");
}

TEST_CASE("BDAT octets are read even when the chunk is refused", "[server_session][bdat]") {
  const std::string payload = "MAIL FROM:<e@x.test>\r\n";
  const std::string bdat = "BDAT " + std::to_string(payload.size()) + " LAST\r\n" + payload;
  SECTION("before the greeting") {
    Client client;
    client.start();
    CHECK(client.send(bdat + "NOOP\r\n") ==
          crlf({"503 5.5.1 Error: send HELO/EHLO first", "250 2.0.0 Ok"}));
  }
  SECTION("without MAIL") {
    Client client = greeted();
    CHECK(client.send(bdat + "NOOP\r\n") ==
          crlf({"503 5.5.1 Error: need MAIL command", "250 2.0.0 Ok"}));
  }
  SECTION("without an accepted recipient, which also ends the transaction") {
    Client client = greeted();
    CHECK(client.send("MAIL FROM:<a@x.test>\r\n" + bdat + "RCPT TO:<b@local.test>\r\n") ==
          crlf({"250 2.1.0 Ok", "554 5.5.1 No valid recipients",
                "503 5.5.1 Error: need MAIL command"}));
  }
}

TEST_CASE("a bad BDAT chunk ends the transaction", "[server_session][bdat]") {
  Client client = in_transaction();
  const std::string output =
      client.send("BDAT 4\r\na\nb\nBDAT 6\r\nx\r\ny\r\nBDAT 3 LAST\r\nz\r\nNOOP\r\n", 2);
  CHECK(output == crlf({"550 5.6.0 Message contains bare CR, bare LF or NUL",
                        "503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command",
                        "250 2.0.0 Ok"}));
  CHECK(client.messages.empty());
  CHECK(client.observer->rejected == std::vector<std::string>{"bad_data"});
}

TEST_CASE("a CR ending the last chunk is refused", "[server_session][bdat]") {
  Client client = in_transaction();
  CHECK(client.send("BDAT 3 LAST\r\nab\r") ==
        "550 5.6.0 Message contains bare CR, bare LF or NUL\r\n");
  CHECK(client.messages.empty());
}

TEST_CASE("BDAT chunks over the size limit", "[server_session][bdat]") {
  Client client = in_transaction();
  const std::string chunk = lines_of(6000);
  CHECK(client.send("BDAT 6000\r\n" + chunk + "BDAT 6000 LAST\r\n" + chunk) ==
        crlf({"250 2.0.0 6000 octets received",
              "552 5.3.4 Message size exceeds fixed maximum message size"}));
  CHECK(client.messages.empty());
  CHECK(client.observer->rejected == std::vector<std::string>{"size"});
}

TEST_CASE("DATA and RCPT after BDAT", "[server_session][bdat]") {
  Client client = in_transaction();
  CHECK(client.send(crlf({"BDAT 4", "ab", "DATA", "RCPT TO:<c@local.test>", "BDAT 0 LAST"})) ==
        crlf({"250 2.0.0 4 octets received", "503 5.5.1 Error: DATA and BDAT cannot be mixed",
              "503 5.5.1 Error: RCPT after BDAT", "250 2.0.0 Ok: queued as 0000000000001001"}));
}

TEST_CASE("bad BDAT syntax closes the session", "[server_session][bdat]") {
  const std::string command =
      GENERATE(std::string("BDAT"), std::string("BDAT x"), std::string("BDAT 5 NOTLAST"),
               std::string("BDAT -1"), std::string("BDAT 99999999999999999999999"));
  Client client = in_transaction();
  CHECK(client.send(command + "\r\nNOOP\r\n") == "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
  CHECK(client.session->closed());
}

// --- Storing -----------------------------------------------------------------------------

TEST_CASE("input waits while the message is stored", "[server_session][storing]") {
  Client client = in_transaction();
  client.auto_store = false;
  CHECK(client.send("DATA\r\nx\r\n.\r\nNOOP\r\n") == "354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(client.session->state() == SessionState::storing);
  CHECK(client.session->deadline_ms() == std::numeric_limits<std::int64_t>::max());
  CHECK(client.send("QUIT\r\nNOOP\r\n").empty());
  client.session->timed_out(client.now);
  CHECK(client.session->take_output().empty());
  const auto message = client.session->take_message();
  REQUIRE(message);
  CHECK_FALSE(client.session->take_message());
  client.session->message_stored({}, client.now);
  CHECK(client.session->take_output() ==
        crlf({"250 2.0.0 Ok: queued as 0000000000001001", "250 2.0.0 Ok", "221 2.0.0 Bye"}));
  CHECK(client.session->closed());
}

TEST_CASE("the session replies to storage errors", "[server_session][storing]") {
  struct Case {
    queue::StoreErrorKind error;
    std::string reply;
    bool closes;
  };
  const Case c = GENERATE(
      Case{queue::StoreErrorKind::no_space, "452 4.3.1 Insufficient system storage", false},
      Case{queue::StoreErrorKind::io_error, "451 4.3.0 Temporary storage failure, try again later",
           false},
      Case{queue::StoreErrorKind::shutting_down, "421 4.3.2 Service shutting down", true});
  Client client = in_transaction();
  client.results.push_back({c.error, "disk"});
  const std::string output = client.send(crlf({"DATA", "x", ".", "NOOP"}));
  CHECK(output == crlf({"354 End data with <CR><LF>.<CR><LF>", c.reply}) +
                      (c.closes ? "" : "250 2.0.0 Ok\r\n"));
  CHECK(client.session->closed() == c.closes);
  CHECK(client.observer->rejected == std::vector<std::string>{"storage"});
  CHECK(client.observer->accepted.empty());
}

// --- Timeouts and shutdown ---------------------------------------------------------------

TEST_CASE("the command deadline counts from the last complete command",
          "[server_session][timeout]") {
  Client client;
  client.now = 5000;
  client.start();
  CHECK(client.session->deadline_ms() == 5000 + 300000);
  client.now = 9000;
  client.send("EHLO client.test\r\n");
  CHECK(client.session->deadline_ms() == 9000 + 300000);
  client.now = 20000;
  client.send("NOO");  // a partial line does not keep the session alive
  CHECK(client.session->deadline_ms() == 9000 + 300000);
}

TEST_CASE("the data deadline asks for a minimum rate", "[server_session][timeout]") {
  Client client = in_transaction();
  client.now = 10000;
  client.send("DATA\r\n");
  CHECK(client.session->deadline_ms() == 10000 + 180000);
  client.now = 11000;
  client.send(std::string(500, 'x'));  // 500 bytes at 500 B/s buy one second more
  CHECK(client.session->deadline_ms() == 10000 + 180000 + 1000);
  client.now = 100000;
  client.send("x");  // recent input, but the rate bound is earlier
  CHECK(client.session->deadline_ms() == 10000 + 180000 + 1002);
}

TEST_CASE("the data deadline without a minimum rate", "[server_session][timeout]") {
  Client client("127.0.0.1", [](ServerSessionConfig& config) { config.min_data_rate = 0; });
  client.start();
  client.send(crlf({"EHLO c.test", "MAIL FROM:<>", "RCPT TO:<b@local.test>", "BDAT 100"}));
  CHECK(client.session->state() == SessionState::bdat);
  client.now = 50000;
  client.send("abc");
  CHECK(client.session->deadline_ms() == 50000 + 180000);
}

TEST_CASE("a session timing out", "[server_session][timeout]") {
  SECTION("between transactions") {
    Client client = greeted();
    client.session->timed_out(client.now);
    CHECK(client.session->take_output() == "421 4.4.2 mx.relayq.test Error: timeout exceeded\r\n");
    CHECK(client.session->closed());
    CHECK(client.observer->rejected.empty());
    CHECK(client.send("NOOP\r\n").empty());
  }
  SECTION("during DATA") {
    Client client = in_transaction();
    client.send("DATA\r\npartial");
    client.session->timed_out(client.now);
    CHECK(client.session->take_output() == "421 4.4.2 mx.relayq.test Error: timeout exceeded\r\n");
    CHECK(client.observer->rejected == std::vector<std::string>{"timeout"});
    CHECK(client.messages.empty());
  }
}

TEST_CASE("a session shutting down", "[server_session][shutdown]") {
  SECTION("when idle") {
    Client client = greeted();
    client.session->shut_down();
    CHECK(client.session->take_output() == "421 4.3.2 mx.relayq.test Service shutting down\r\n");
    CHECK(client.session->closed());
    client.session->shut_down();
    CHECK(client.session->take_output().empty());
  }
  SECTION("while storing: after the store answers") {
    Client client = in_transaction();
    client.auto_store = false;
    client.send("DATA\r\nx\r\n.\r\nNOOP\r\n");
    client.session->shut_down();
    CHECK(client.session->take_output().empty());
    CHECK(client.session->take_message());
    client.session->message_stored({}, client.now);
    CHECK(client.session->take_output() ==
          crlf({"250 2.0.0 Ok: queued as 0000000000001001",
                "421 4.3.2 mx.relayq.test Service shutting down"}));
    CHECK(client.session->closed());
    CHECK(client.observer->accepted.size() == 1);
  }
}
