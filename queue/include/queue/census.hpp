// How many messages the queue holds, by state, kept current by whoever changes it, so that a
// Prometheus scrape never has to read the queue.
#pragma once

#include <atomic>
#include <cstdint>

namespace relayq::mta {

struct QueueCensus {
  std::atomic<std::int64_t> messages{0};  // stored, with recipients still pending
  std::atomic<std::int64_t> held{0};      // of those, held by an operator
  std::atomic<std::int64_t> active{0};    // of those, in a delivery round right now
};

}  // namespace relayq::mta
