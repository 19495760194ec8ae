// One event loop thread and everything that lives on it: its share of every listener, its
// inbound connections, and the outbound engine for the messages it owns.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "mta/inbound/listeners.hpp"
#include "mta/net/loop_thread.hpp"
#include "mta/delivery/engine.hpp"

namespace relayq::mta {

struct Worker {
  net::LoopThread thread;
  InboundLoop inbound;
  std::unique_ptr<OutboundEngine> engine;
};

}  // namespace relayq::mta
