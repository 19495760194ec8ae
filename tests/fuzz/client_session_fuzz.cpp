// libFuzzer target: ClientSession fed arbitrary server replies in chunks, given a message to
// send each time it is idle (up to three), the host completing or failing STARTTLS and
// acknowledging every write. Byte 0 picks the TLS policy and the message, byte 1 seeds the
// chunk sizes and the host's choices.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "mta/smtp/client_session.hpp"

namespace {

using namespace relayq;
using mta::ClientSession;
using mta::ClientState;

mta::OutboundMessage make_message(std::uint8_t flags, int round) {
  mta::OutboundMessage message;
  message.sender = (flags & 0x04) ? "" : "sender@x.test";
  const int count = 1 + ((flags >> 3) & 0x03) + round;
  for (int i = 0; i < count; ++i) {
    message.recipients.push_back("rcpt" + std::to_string(i) + "@y.test");
  }
  if (flags & 0x20) message.recipients.push_back("\xc3\xbc@y.test");
  message.eight_bit_mime = flags & 0x40;
  message.smtputf8 = flags & 0x20;
  message.body = std::make_shared<const std::string>(
      (flags & 0x80) ? std::string("Subject: x\r\n\r\n.leading dot\r\n.\r\nbody\r\n")
                     : std::string("Subject: x\r\n\r\nHello\r\n"));
  return message;
}

struct Host {
  ClientSession session;
  fuzz::Choices choices;
  std::uint8_t flags;
  int sent = 0;
  std::size_t pending_recipients = 0;
  bool waiting = false;

  // Drains the session's outputs and answers its requests until it asks nothing more.
  void settle(std::int64_t now) {
    for (int round = 0; round < 1000; ++round) {
      bool acted = false;
      if (!session.take_output().empty()) {
        session.output_written(now);
        acted = true;
      }
      if (session.take_starttls()) {
        if (choices.below(4) == 0) {
          session.tls_failed("fuzz handshake failure");
        } else {
          session.tls_established(now);
        }
        acted = true;
      }
      if (auto result = session.take_result()) {
        if (!waiting) fuzz::fail("a result without a transaction");
        if (result->recipients.size() != pending_recipients)
          fuzz::fail("a result with the wrong number of recipients");
        waiting = false;
        acted = true;
      }
      if (session.state() == ClientState::idle && !waiting && sent < 3) {
        auto message = make_message(flags, sent++);
        pending_recipients = message.recipients.size();
        waiting = true;
        session.send(std::move(message), now);
        acted = true;
      }
      if (!acted) return;
    }
    fuzz::fail("the session kept asking its host for more than 1000 rounds");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  auto config = std::make_shared<mta::ClientSessionConfig>();
  config->helo_name = "relay.fuzz.test";
  config->tls = static_cast<mta::TlsPolicy>((flags & 0x03) % 3);
  Host host{ClientSession(config), fuzz::Choices(data[1]), flags};

  std::int64_t now = 1000;
  host.session.connected(now);
  host.settle(now);
  std::size_t pos = 0;
  while (pos < input.size() && !host.session.closed()) {
    const std::size_t piece = host.choices.chunk(input.size() - pos);
    host.session.receive(input.substr(pos, piece), now);
    pos += piece;
    now += 1;
    host.settle(now);
  }
  switch (host.choices.below(3)) {
    case 0:
      if (!host.waiting) {
        host.session.quit(now);
        break;
      }
      [[fallthrough]];
    case 1:
      host.session.timed_out(host.session.deadline_ms());
      break;
    default:
      host.session.connection_lost("fuzz end of input");
  }
  if (!host.session.closed()) host.session.connection_lost("fuzz end of input");
  host.settle(now);
  if (host.waiting) fuzz::fail("the transaction never ended");
  return 0;
}
