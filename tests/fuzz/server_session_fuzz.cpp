// libFuzzer target: the input as a whole client dialogue fed to ServerSession in chunks, the
// host answering every request (stores, sender checks, AUTH, STARTTLS) so the session never
// stalls. Byte 0 picks the listener's settings, byte 1 seeds the chunk sizes and verdicts.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "mta/smtp/server_session.hpp"
#include "policy/relay_rules.hpp"
#include "queue/store.hpp"

namespace {

using namespace relayq;
using mta::ServerSession;

class NullObserver : public mta::SessionObserver {
 public:
  void message_accepted(const queue::Envelope&) override {}
  void message_rejected(metrics::RejectReason) override {}
};

std::shared_ptr<mta::ServerSessionConfig> make_config(std::uint8_t flags) {
  auto config = std::make_shared<mta::ServerSessionConfig>();
  config->hostname = "mx.fuzz.test";
  config->listener_name = "127.0.0.1:25";
  const bool small = flags & 0x08;
  config->max_message_size = small ? 600 : 100000;
  config->max_header_size = small ? 200 : 50000;
  config->max_recipients = small ? 2 : 50;
  config->max_auth_failures = 3;
  config->max_errors = small ? 3 : 20;
  config->max_junk_commands = small ? 3 : 100;
  config->relay = std::make_shared<policy::RelayRules>(
      std::vector<dns::Cidr>{*dns::Cidr::parse("127.0.0.0/8")},
      std::vector<std::string>{"local.test", "xn--bcher-kva.test"});
  config->starttls = true;
  config->auth = true;
  config->auth_without_tls = flags & 0x01;
  config->auth_required = flags & 0x02;
  config->check_senders = true;
  auto counter = std::make_shared<queue::MessageId>(0x1000);
  config->next_id = [counter] { return ++*counter; };
  config->wall_clock_ms = [] { return std::int64_t{1700000000000}; };
  return config;
}

// Every reply the session makes is whole lines.
void check_output(const std::string& output) {
  if (!output.empty() && (output.size() < 2 || output.compare(output.size() - 2, 2, "\r\n") != 0))
    fuzz::fail("server output does not end with CRLF");
}

// Answers whatever the session asks of its host until it asks nothing more.
void settle(ServerSession& session, fuzz::Choices& choices, std::int64_t now) {
  for (int round = 0; round < 10000; ++round) {
    check_output(session.take_output());
    bool acted = false;
    if (session.take_starttls()) {
      session.tls_established(mta::TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", 128}, now);
      acted = true;
    }
    if (auto message = session.take_message()) {
      if (message->envelope.recipients.empty()) fuzz::fail("message without recipients");
      queue::StoreResult result;
      if (choices.below(4) == 0) {
        result.error = static_cast<queue::StoreErrorKind>(1 + choices.below(3));
        result.detail = "fuzz";
      }
      session.message_stored(result, now);
      acted = true;
    }
    if (auto credentials = session.take_credentials()) {
      const auto pick = choices.below(4);
      session.credentials_checked(pick < 2   ? mta::AuthVerdict::accepted
                                  : pick < 3 ? mta::AuthVerdict::rejected
                                             : mta::AuthVerdict::throttled,
                                  now);
      acted = true;
    }
    if (auto check = session.take_sender_check()) {
      const auto pick = choices.below(8);
      const auto verdict =
          pick < 4 ? mta::SenderVerdict::accepted : static_cast<mta::SenderVerdict>(pick - 3);
      session.sender_checked(verdict, "fuzz detail", now);
      acted = true;
    }
    if (!acted) return;
  }
  fuzz::fail("the session kept asking its host for more than 10000 rounds");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  fuzz::Choices choices(data[1]);
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  NullObserver observer;
  const auto peer = *dns::IpAddress::parse((flags & 0x04) ? "203.0.113.9" : "127.0.0.1");
  ServerSession session(make_config(flags), mta::PeerInfo{peer, 40000}, &observer);
  std::int64_t now = 1000;
  session.start(now);
  if (flags & 0x10) {  // smtps: TLS before the banner's dialogue
    session.tls_established(mta::TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256}, now);
  }
  settle(session, choices, now);

  std::size_t pos = 0;
  while (pos < input.size() && !session.closed()) {
    const std::size_t piece = choices.chunk(input.size() - pos);
    session.receive(input.substr(pos, piece), now);
    pos += piece;
    now += 1;
    settle(session, choices, now);
  }
  if (flags & 0x20) {
    session.timed_out(session.deadline_ms());
  } else {
    session.shut_down();
  }
  settle(session, choices, now);
  return 0;
}
