// A counter that many threads increment without sharing a cache line; read by summing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "metrics/shard.hpp"

namespace relayq::metrics {

class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Lock-free: one relaxed add to the calling thread's shard.
  void Increment(std::uint64_t amount = 1) noexcept {
    shards_[shard_index()].value.fetch_add(amount, std::memory_order_relaxed);
  }

  // The sum over all shards (a scrape; not synchronised with concurrent increments).
  std::uint64_t value() const noexcept;

 private:
  struct alignas(kCacheLine) Shard {
    std::atomic<std::uint64_t> value{0};
  };
  std::array<Shard, kShards> shards_;
};

}  // namespace relayq::metrics
