// One event loop thread and everything that lives on it: its share of every listener, its
// inbound connections, and the outbound engine for the messages it owns.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "mta/delivery/engine.hpp"
#include "mta/delivery/recipient_prober.hpp"
#include "mta/inbound/listeners.hpp"
#include "mta/net/loop_thread.hpp"

namespace relayq::mta {

struct Worker {
  net::LoopThread thread;
  InboundLoop inbound;
  std::unique_ptr<DeliveryEngine> engine;
  // Verifies recipients of our own domains for this loop's inbound sessions.
  std::unique_ptr<RecipientProber> prober;
};

}  // namespace relayq::mta
