// One event loop thread and everything that lives on it: its share of every listener, its
// inbound connections, and the outbound engine for the messages it owns.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "inbound_connection.hpp"
#include "loop_thread.hpp"
#include "outbound_engine.hpp"

namespace relayq::mta {

// A listener's socket on one loop; the handle's data points back here.
struct ListenSocket {
  uv_tcp_t handle{};
  ListenerShared* listener = nullptr;
  InboundContext* context = nullptr;
  bool closed = false;
};

struct Worker {
  LoopThread thread;
  InboundContext context;
  std::vector<std::unique_ptr<ListenSocket>> sockets;
  std::unique_ptr<OutboundEngine> engine;
};

}  // namespace relayq::mta
