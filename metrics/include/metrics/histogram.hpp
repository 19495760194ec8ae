// A histogram that many threads observe into without sharing a cache line; read by summing.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "metrics/shard.hpp"

namespace relayq::metrics {

class Histogram {
 public:
  using BucketBoundaries = std::vector<double>;
  // Finite upper bounds per histogram; a fixed cap keeps each shard one flat block.
  static constexpr std::size_t kMaxBounds = 23;

  // Bounds strictly increasing and finite, at most kMaxBounds; throws std::invalid_argument.
  explicit Histogram(BucketBoundaries bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Lock-free: relaxed adds to the calling thread's shard. A value equal to a bound counts in
  // that bound's bucket (Prometheus's "le").
  void Observe(double value) noexcept {
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    Shard& shard = shards_[shard_index()];
    shard.counts[bucket].fetch_add(1, std::memory_order_relaxed);
    shard.sum.fetch_add(value, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (which equals count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  // The sum over all shards (a scrape; not synchronised with concurrent observations).
  Snapshot snapshot() const;
  const BucketBoundaries& bounds() const { return bounds_; }

 private:
  struct alignas(kCacheLine) Shard {
    std::array<std::atomic<std::uint64_t>, kMaxBounds + 1> counts{};
    std::atomic<double> sum{0};
  };
  BucketBoundaries bounds_;
  std::array<Shard, kShards> shards_;
};

}  // namespace relayq::metrics
