// The contract's queue gauges: set by the daemon, or read from its source at each scrape.
#pragma once

#include <functional>
#include <string_view>

#include "family.hpp"
#include "metrics/labels.hpp"
#include "metrics/sources.hpp"
#include "source.hpp"

namespace relayq::metrics::detail {

class QueueCollector final : public Collector {
 public:
  QueueCollector();

  // Lock-free.
  Gauge& messages(QueueState state);
  Gauge& oldest_message_age() { return *oldest_age_; }
  // While a source is set, each scrape sets the gauges from it first, so its values win over
  // any Set() made in between.
  void set_source(std::function<QueueGauges()> source) { source_.set(std::move(source)); }

  void collect(std::vector<prometheus::MetricFamily>& out) const override;

 private:
  Family<Gauge> messages_family_;
  Family<Gauge> oldest_age_family_;
  Gauge* ready_;
  Gauge* scheduled_;
  Gauge* held_;
  Gauge* oldest_age_;
  Source<QueueGauges> source_;
};

}  // namespace relayq::metrics::detail
