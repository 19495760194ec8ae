// The queue store's gauges, read from the daemon's source at each scrape.
#pragma once

#include <functional>

#include "collector.hpp"
#include "metrics/sources.hpp"
#include "source.hpp"

namespace relayq::metrics::detail {

class StoreCollector final : public Collector {
 public:
  void set_source(std::function<StoreGauges()> source) { source_.set(std::move(source)); }
  // Nothing until a source is set: before the store is open there is no size to report.
  void collect(std::vector<prometheus::MetricFamily>& out) const override;

 private:
  Source<StoreGauges> source_;
};

}  // namespace relayq::metrics::detail
