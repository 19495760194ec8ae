// Gauges: UpDownGauge for levels that many threads move (open connections), Gauge for values
// computed in one place and set (queue sizes).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "metrics/shard.hpp"

namespace relayq::metrics {

// Moved up and down from many threads: each thread adds to its own shard; the level is the
// sum, so a connection opened on one loop and closed on another still nets to zero.
class UpDownGauge {
 public:
  UpDownGauge() = default;
  UpDownGauge(const UpDownGauge&) = delete;
  UpDownGauge& operator=(const UpDownGauge&) = delete;

  void Increment(std::int64_t amount = 1) noexcept {
    shards_[shard_index()].value.fetch_add(amount, std::memory_order_relaxed);
  }
  void Decrement(std::int64_t amount = 1) noexcept { Increment(-amount); }

  std::int64_t value() const noexcept;

 private:
  struct alignas(kCacheLine) Shard {
    std::atomic<std::int64_t> value{0};
  };
  std::array<Shard, kShards> shards_;
};

// Set as a whole: one atomic, since a value that is set has one writer at a time.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

}  // namespace relayq::metrics
