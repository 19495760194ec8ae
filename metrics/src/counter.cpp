// Reading a sharded counter.
#include "metrics/counter.hpp"

namespace relayq::metrics {

std::uint64_t Counter::value() const noexcept {
  std::uint64_t sum = 0;
  for (const Shard& shard : shards_) sum += shard.value.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace relayq::metrics
