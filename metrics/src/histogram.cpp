// Histogram bounds checks and reading a sharded histogram.
#include "metrics/histogram.hpp"

#include <cmath>
#include <stdexcept>

namespace relayq::metrics {

Histogram::Histogram(BucketBoundaries bounds) : bounds_(std::move(bounds)) {
  if (bounds_.size() > kMaxBounds) throw std::invalid_argument("histogram: too many buckets");
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
      throw std::invalid_argument("histogram: bounds must be finite and strictly increasing");
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.cumulative.assign(bounds_.size() + 1, 0);
  for (const Shard& shard : shards_) {
    for (std::size_t i = 0; i < snapshot.cumulative.size(); ++i)
      snapshot.cumulative[i] += shard.counts[i].load(std::memory_order_relaxed);
    snapshot.sum += shard.sum.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < snapshot.cumulative.size(); ++i)
    snapshot.cumulative[i] += snapshot.cumulative[i - 1];
  // Taken from the buckets rather than counted apart, so that count and +Inf always agree.
  snapshot.count = snapshot.cumulative.back();
  return snapshot;
}

}  // namespace relayq::metrics
