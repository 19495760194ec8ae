// Reading a sharded gauge.
#include "metrics/gauge.hpp"

namespace relayq::metrics {

std::int64_t UpDownGauge::value() const noexcept {
  std::int64_t sum = 0;
  for (const Shard& shard : shards_) sum += shard.value.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace relayq::metrics
