// Per-thread shards for hot-path metrics: each thread writes its own cache line, so loops that
// update the same counter never contend for it.
#pragma once

#include <cstddef>

namespace relayq::metrics {

// Threads beyond this many share shards; that stays correct because updates are atomic adds.
inline constexpr std::size_t kShards = 64;
// Each shard starts a cache line of its own, so two threads' updates never bounce one line.
inline constexpr std::size_t kCacheLine = 64;

namespace detail {

// The next shard in round-robin order.
std::size_t claim_shard() noexcept;

// 0 until the thread's first update, then its shard + 1. Constant-initialised, so that reading
// it needs no thread_local initialisation guard on the hot path.
inline thread_local std::size_t thread_shard = 0;

}  // namespace detail

// The calling thread's shard, assigned on its first update and kept for its lifetime.
inline std::size_t shard_index() noexcept {
  std::size_t shard = detail::thread_shard;
  if (shard == 0) [[unlikely]] {
    shard = detail::claim_shard() + 1;
    detail::thread_shard = shard;
  }
  return shard - 1;
}

}  // namespace relayq::metrics
