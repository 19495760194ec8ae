// A scripted SMTP server for ClientSession tests: says replies (whole or in pieces), records
// what the client writes, and applies every kind of event a step can meet.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/smtp/client_session.hpp"

namespace relayq::mta::client_testing {

// Joins lines, each ended with CRLF.
inline std::string lines(std::initializer_list<std::string_view> items) {
  std::string text;
  for (const auto item : items) text.append(item).append("\r\n");
  return text;
}

const std::string kPipelinedEhlo =
    lines({"250-mx.test greets relay.test", "250-PIPELINING", "250-SIZE 1000", "250-8BITMIME",
           "250-SMTPUTF8", "250 ENHANCEDSTATUSCODES"});
const std::string kPlainEhlo = lines({"250-mx.test greets relay.test", "250-SIZE 1000",
                                      "250-8BITMIME", "250-SMTPUTF8", "250 ENHANCEDSTATUSCODES"});
// Offers STARTTLS (RFC 3207), and pipelining so that a transaction is one write.
const std::string kStartTlsEhlo = lines({"250-mx.test greets relay.test", "250-PIPELINING",
                                         "250-SIZE 1000", "250-STARTTLS", "250 8BITMIME"});

inline OutboundMessage message(std::vector<std::string> recipients = {"a@y.test", "b@y.test"},
                               std::string body = "Hello\r\n") {
  OutboundMessage out;
  out.sender = "s@x.test";
  out.recipients = std::move(recipients);
  out.body = std::make_shared<const std::string>(std::move(body));
  return out;
}

class Server {
 public:
  explicit Server(std::size_t piece = 0) : piece(piece) {
    config->helo_name = "relay.test";
    config->greeting_timeout = std::chrono::seconds(300);
    config->command_timeout = std::chrono::seconds(301);
    config->data_init_timeout = std::chrono::seconds(120);
    config->data_block_timeout = std::chrono::seconds(180);
    config->data_end_timeout = std::chrono::seconds(600);
  }

  // The TCP connection is up; returns what the client wrote (nothing until the greeting).
  std::string connect() {
    session.connected(now);
    return take();
  }

  // The server writes `bytes` (in pieces of `piece` bytes, 0 = at once); returns everything
  // the client wrote meanwhile.
  std::string say(std::string_view bytes) {
    const std::size_t step = piece == 0 ? std::max<std::size_t>(bytes.size(), 1) : piece;
    std::string written;
    for (std::size_t pos = 0; pos < bytes.size(); pos += step) {
      session.receive(bytes.substr(pos, step), now);
      written += take();
    }
    return written;
  }

  std::string send(OutboundMessage out) {
    session.send(std::move(out), now);
    return take();
  }

  std::string quit() {
    session.quit(now);
    return take();
  }

  // Every write is acknowledged at once, as a fast socket would.
  std::string take() {
    std::string written = session.take_output();
    if (!written.empty()) {
      writes.push_back(written);
      session.output_written(now);
    }
    return written;
  }

  // Greeted and EHLO answered with `ehlo`.
  Server& ready(const std::string& ehlo = kPipelinedEhlo) {
    connect();
    say("220 mx.test ESMTP\r\n");
    say(ehlo);
    REQUIRE(session.state() == ClientState::idle);
    return *this;
  }

  // Greeted with `policy`, EHLO answered with `ehlo` offering STARTTLS: STARTTLS is sent.
  Server& starttls_sent(TlsPolicy policy, const std::string& ehlo = kStartTlsEhlo) {
    config->tls = policy;
    connect();
    say("220 mx.test ESMTP\r\n");
    REQUIRE(say(ehlo) == "STARTTLS\r\n");
    REQUIRE(session.state() == ClientState::greeting);
    return *this;
  }

  // STARTTLS accepted and taken by the host: the handshake is under way.
  Server& handshaking(TlsPolicy policy = TlsPolicy::opportunistic) {
    starttls_sent(policy);
    REQUIRE(say("220 2.0.0 ready to start TLS\r\n").empty());
    REQUIRE(session.take_starttls());
    REQUIRE(session.state() == ClientState::tls_handshake);
    return *this;
  }

  // The host's handshake completed; returns what the client wrote (EHLO again).
  std::string tls_established() {
    session.tls_established(now);
    return take();
  }

  std::optional<TransactionResult> result() { return session.take_result(); }

  std::shared_ptr<ClientSessionConfig> config = std::make_shared<ClientSessionConfig>();
  ClientSession session{config};
  std::size_t piece = 0;
  std::int64_t now = 1000;
  std::vector<std::string> writes;  // every non-empty output, in order
};

// What can happen while a reply is awaited.
enum class Event { temporary, permanent, shutdown, garbage, timeout, lost };
// Every Event, for GENERATE.
inline const Event kEvents[] = {Event::temporary, Event::permanent, Event::shutdown,
                                Event::garbage,   Event::timeout,   Event::lost};

inline const char* event_name(Event event) {
  switch (event) {
    case Event::temporary:
      return "4xx";
    case Event::permanent:
      return "5xx";
    case Event::shutdown:
      return "421";
    case Event::garbage:
      return "garbage";
    case Event::timeout:
      return "timeout";
    case Event::lost:
      return "connection lost";
  }
  return "";
}

// The events after which the session is closed whatever the step.
inline bool closes(Event event) {
  return event != Event::temporary && event != Event::permanent;
}

// Makes `event` happen; returns what the client wrote in response.
inline std::string happen(Server& server, Event event) {
  switch (event) {
    case Event::temporary:
      return server.say("451 4.3.0 try later\r\n");
    case Event::permanent:
      return server.say("550 5.7.1 no\r\n");
    case Event::shutdown:
      return server.say("421 4.3.2 mx.test closing\r\n");
    case Event::garbage:
      return server.say("HTTP/1.1 400 Bad Request\r\n");
    case Event::timeout:
      server.now = server.session.deadline_ms();
      server.session.timed_out(server.now);
      return server.take();
    case Event::lost:
      server.session.connection_lost("reset by peer");
      return server.take();
  }
  return {};
}

// The reply the client records for `event` while awaiting `awaited` (a timeout's wording).
inline SmtpReply reply_for(Event event, std::string_view awaited) {
  switch (event) {
    case Event::temporary:
      return {451, "451 4.3.0 try later"};
    case Event::permanent:
      return {550, "550 5.7.1 no"};
    case Event::shutdown:
      return {421, "421 4.3.2 mx.test closing"};
    case Event::garbage:
      return {0, "protocol error: malformed reply \"HTTP/1.1 400 Bad Request\""};
    case Event::timeout:
      return {0, "timeout waiting for " + std::string(awaited)};
    case Event::lost:
      return {0, "connection lost while waiting for " + std::string(awaited) + ": reset by peer"};
  }
  return {};
}

inline void check_reply(const SmtpReply& actual, const SmtpReply& expected) {
  CHECK(actual.code == expected.code);
  CHECK(actual.text == expected.text);
}

// Checks a result recipient by recipient.
inline void check_result(const std::optional<TransactionResult>& result,
                         const std::vector<SmtpReply>& expected) {
  REQUIRE(result.has_value());
  REQUIRE(result->recipients.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("recipient " << i);
    check_reply(result->recipients[i], expected[i]);
  }
}

// `body` with CRLF, bare CR and bare LF each made one CRLF, and a last line ended: what the
// server must read after undoing dot-stuffing. Written char by char, unlike the real thing.
inline std::string normalised(std::string_view body) {
  std::string text;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r' || body[i] == '\n') {
      if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
      text.append("\r\n");
    } else {
      text.push_back(body[i]);
    }
  }
  if (!text.empty() && !text.ends_with("\r\n")) text.append("\r\n");
  return text;
}

// Checks that `wire` (the bytes after 354) is safe to send and carries `body`: no bare CR or
// LF, no "." line before the terminator, and it unstuffs back to normalised(body).
inline void check_content(std::string_view wire, std::string_view body) {
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i] == '\r') REQUIRE((i + 1 < wire.size() && wire[i + 1] == '\n'));
    if (wire[i] == '\n') REQUIRE((i > 0 && wire[i - 1] == '\r'));
  }
  REQUIRE(wire.ends_with(".\r\n"));
  std::string unstuffed;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = wire.find("\r\n", start) + 2;
    std::string_view line = wire.substr(start, end - start);
    if (line == ".\r\n") {
      REQUIRE(end == wire.size());  // the terminator, and only at the end
      break;
    }
    if (line.starts_with('.')) line.remove_prefix(1);
    unstuffed.append(line);
    start = end;
  }
  CHECK(unstuffed == normalised(body));
}

// The pipelined group and the reply of message() (two recipients, a 7-byte body).
inline const std::string kGroup =
    lines({"MAIL FROM:<s@x.test> SIZE=7", "RCPT TO:<a@y.test>", "RCPT TO:<b@y.test>", "DATA"});
inline const SmtpReply kQueued{250, "250 2.0.0 queued"};

}  // namespace relayq::mta::client_testing
