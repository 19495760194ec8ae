// Round-robin assignment of shards to threads.
#include <atomic>

#include "metrics/shard.hpp"

namespace relayq::metrics::detail {

std::size_t claim_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % kShards;
}

}  // namespace relayq::metrics::detail
