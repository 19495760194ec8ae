// The standard process metrics of Prometheus client libraries, read from /proc at each scrape.
#pragma once

#include "collector.hpp"

namespace relayq::metrics::detail {

class ProcessCollector final : public Collector {
 public:
  ProcessCollector();
  // A family whose source cannot be read (no /proc) is left out rather than shown as 0.
  void collect(std::vector<prometheus::MetricFamily>& out) const override;

 private:
  double start_time_seconds_;  // fixed for the process's life, so read once; < 0 if unknown
};

}  // namespace relayq::metrics::detail
