// Values that the daemon computes on demand and the exposer reads at each scrape, so that
// nothing on the hot path has to push them.
#pragma once

#include <cstdint>

namespace relayq::metrics {

// The contract's queue gauges (relayq_queue_messages{state},
// relayq_queue_oldest_message_age_seconds).
struct QueueGauges {
  std::uint64_t ready = 0;      // due now, waiting for a delivery slot
  std::uint64_t scheduled = 0;  // waiting for a retry time
  std::uint64_t held = 0;       // held by an operator
  double oldest_message_age_seconds = 0;
};

// The queue store's disk and compaction state. A plain copy of queue::StoreGauges, so that
// metrics does not depend on queue.
struct StoreGauges {
  std::uint64_t size_bytes = 0;                // SST files and WAL on disk
  std::uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate of bytes left to compact
  bool write_stall = false;                    // writes are being delayed or stopped now
  std::uint64_t stall_micros_total = 0;        // time writes spent stalled since the store opened
  bool refusing_writes = false;                // the last write failed: mail gets 4xx
};

}  // namespace relayq::metrics
