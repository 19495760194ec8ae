// A test client for ServerSession: feeds bytes, stores the messages it hands out, records replies.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mta/smtp/server_session.hpp"
#include "queue/clock.hpp"

namespace relayq::mta::testing {

class Recorder : public SessionObserver {
 public:
  void message_accepted(const queue::Envelope& envelope) override { accepted.push_back(envelope); }
  void message_rejected(metrics::RejectReason reason) override {
    rejected.emplace_back(metrics::label(reason));
  }
  void state_changed(SessionState from, SessionState to) override {
    path.push_back(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
  }

  std::vector<queue::Envelope> accepted;
  std::vector<std::string> rejected;
  std::vector<std::string> path;  // every change of state, "from -> to"
};

// hostname mx.relayq.test, 10000 bytes, 3 recipients, relay from 127.0.0.0/8 and to local.test,
// ids counting up from 0x1001.
inline std::shared_ptr<ServerSessionConfig> test_config() {
  auto config = std::make_shared<ServerSessionConfig>();
  config->hostname = "mx.relayq.test";
  config->listener_name = "127.0.0.1:2525";
  config->max_message_size = 10000;
  config->max_recipients = 3;
  config->command_timeout = std::chrono::seconds(300);
  config->data_timeout = std::chrono::seconds(180);
  config->min_data_rate = 500;
  config->relay =
      std::make_shared<policy::RelayRules>(std::vector<dns::Cidr>{*dns::Cidr::parse("127.0.0.0/8")},
                                           std::vector<std::string>{"local.test"});
  auto counter = std::make_shared<queue::MessageId>(0x1000);
  config->next_id = [counter] { return ++*counter; };
  config->wall_clock_ms = queue::wall_clock_ms;
  return config;
}

// Joins lines, each ended with CRLF: what a client sends, or the replies it expects.
inline std::string crlf(std::initializer_list<std::string_view> lines) {
  std::string text;
  for (const auto line : lines) {
    text.append(line);
    text.append("\r\n");
  }
  return text;
}

class Client {
 public:
  explicit Client(std::string peer = "127.0.0.1",
                  const std::function<void(ServerSessionConfig&)>& adjust = {}) {
    auto config = test_config();
    if (adjust) adjust(*config);
    session = std::make_unique<ServerSession>(config, PeerInfo{*dns::IpAddress::parse(peer), 40000},
                                              observer.get());
  }

  std::string start() {
    session->start(now);
    return session->take_output();
  }

  // Sends `bytes` in pieces of `piece` bytes (0 = at once); returns every reply meanwhile.
  std::string send(std::string_view bytes, std::size_t piece = 0) {
    const std::size_t step = piece == 0 ? std::max<std::size_t>(bytes.size(), 1) : piece;
    std::string output;
    for (std::size_t pos = 0; pos < bytes.size(); pos += step) {
      session->receive(bytes.substr(pos, step), now);
      output += settle();
    }
    return output;
  }

  // Drains replies and, with auto_store, stores every message handed out.
  std::string settle() {
    std::string output = session->take_output();
    while (auto_store) {
      auto message = session->take_message();
      if (!message) break;
      messages.push_back(std::move(*message));
      queue::StoreResult result;
      if (!results.empty()) {
        result = results.front();
        results.pop_front();
      }
      session->message_stored(result, now);
      output += session->take_output();
    }
    return output;
  }

  // On the heap, so that the session's pointer to it survives moving the client.
  std::unique_ptr<Recorder> observer = std::make_unique<Recorder>();
  std::unique_ptr<ServerSession> session;
  std::vector<queue::Message> messages;
  std::deque<queue::StoreResult> results;  // for the next stores; ok when empty
  bool auto_store = true;
  std::int64_t now = 1000;
};

// The body after its Received header (whose date depends on the wall clock).
inline std::string content_of(const queue::Message& message) {
  const auto end = message.body.find("\r\n", message.body.find("+0000"));
  return message.body.substr(end + 2);
}

}  // namespace relayq::mta::testing
