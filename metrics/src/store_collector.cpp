// Declarations of the queue store's metrics.
#include "store_collector.hpp"

#include "family.hpp"

namespace relayq::metrics::detail {

void StoreCollector::collect(std::vector<prometheus::MetricFamily>& out) const {
  const auto gauges = source_.read();
  if (!gauges) return;
  using prometheus::MetricType;
  out.push_back(
      single_sample("relayq_queue_store_size_bytes",
                    "Disk space of the queue store: SST files, blob files and write-ahead log.",
                    MetricType::Gauge, static_cast<double>(gauges->size_bytes)));
  out.push_back(single_sample(
      "relayq_queue_store_pending_compaction_bytes",
      "Bytes RocksDB estimates it must compact before the queue store is back in shape.",
      MetricType::Gauge, static_cast<double>(gauges->pending_compaction_bytes)));
  out.push_back(single_sample(
      "relayq_queue_store_write_stalled",
      "1 while RocksDB delays or stops writes to the queue store (compaction behind), else 0.",
      MetricType::Gauge, gauges->write_stall ? 1 : 0));
  out.push_back(single_sample(
      "relayq_queue_store_refusing_writes",
      "1 while the queue store refuses writes after one failed (disk full: it resumes once a "
      "32 MiB flush fits, see event=store_waiting_for_space), so mail gets 4xx; else 0.",
      MetricType::Gauge, gauges->refusing_writes ? 1 : 0));
  out.push_back(single_sample("relayq_queue_store_write_stall_seconds_total",
                              "Time writes to the queue store spent stalled since it opened.",
                              MetricType::Counter,
                              static_cast<double>(gauges->stall_micros_total) / 1e6));
}

}  // namespace relayq::metrics::detail
