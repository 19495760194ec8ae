// The configured listeners across all loops: opened at start, added, changed and closed by a
// reload (a removed listener stops accepting; its sessions finish on their own).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/inbound/connection.hpp"

namespace relayq::mta {

// A listener's socket on one loop; the handle's data points back here.
struct ListenSocket {
  uv_tcp_t handle{};
  ListenerShared* listener = nullptr;
  InboundContext* context = nullptr;
  bool closed = false;
};

// One loop's share of the listeners: its sockets and the context its connections share.
struct InboundLoop {
  InboundContext context;  // context.loop is the loop
  std::vector<std::unique_ptr<ListenSocket>> sockets;
};

class Listeners {
 public:
  // One socket per listener on each of `loops`, which outlive the Listeners.
  Listeners(std::vector<InboundLoop*> loops, metrics::Metrics& metrics);

  // Binds one socket per loop (SO_REUSEPORT) now, so that errors are reported here; the
  // loops start accepting as soon as they run. Throws std::runtime_error.
  void open(const ListenerConfig& listener, std::shared_ptr<const ListenerSettings> settings);
  // New settings for new connections of an open listener.
  void update(const ListenerConfig& listener, std::shared_ptr<const ListenerSettings> settings);
  // Stops accepting on `address`; connections in progress go on.
  void close(const std::string& address);
  // Stops accepting everywhere (shutdown).
  void close_all();

  bool is_open(const std::string& address) const;
  std::vector<std::string> addresses() const;
  std::size_t open_connections() const;

 private:
  void close_on_loops(ListenerShared* listener);

  std::vector<InboundLoop*> loops_;
  metrics::Metrics& metrics_;
  // Failed AUTH by client address over every listener and loop: 10 in 5 minutes is enough.
  AuthThrottle auth_throttle_{10, std::chrono::minutes(5)};
  std::vector<std::unique_ptr<ListenerShared>> open_;
  // Closed listeners stay allocated: connections still in progress refer to them.
  std::vector<std::unique_ptr<ListenerShared>> closed_;
};

}  // namespace relayq::mta
