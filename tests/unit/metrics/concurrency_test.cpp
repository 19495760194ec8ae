// Sharded metrics under concurrent updates: counters, gauges and histograms add up exactly,
// with more threads than shards too, and scrapes running alongside see counts only grow.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "metrics/metrics.hpp"

namespace relayq::metrics {
namespace {

// Runs body(thread_number) on `threads` threads started together, and waits for them.
template <class Body>
void hammer(int threads, Body body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&go, &body, t] {
      while (!go.load()) std::this_thread::yield();
      body(t);
    });
  }
  go = true;
  for (auto& worker : workers) worker.join();
}

TEST_CASE("metrics counters from concurrent threads sum exactly", "[metrics_concurrency]") {
  Metrics metrics;
  constexpr int kThreads = 4;
  constexpr int kIncrements = 250'000;
  Counter& delivered = metrics.recipients_delivered();
  Counter& received = metrics.messages_received("127.0.0.1:2525");
  hammer(kThreads, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      delivered.Increment();
      received.Increment(2);
    }
  });
  CHECK(delivered.value() == std::uint64_t{kThreads} * kIncrements);
  CHECK(received.value() == std::uint64_t{kThreads} * kIncrements * 2);
}

TEST_CASE("metrics counters stay exact with more threads than shards", "[metrics_concurrency]") {
  Counter counter;
  const int threads = static_cast<int>(kShards) + 16;
  constexpr int kIncrements = 10'000;
  hammer(threads, [&](int) {
    for (int i = 0; i < kIncrements; ++i) counter.Increment();
  });
  CHECK(counter.value() == static_cast<std::uint64_t>(threads) * kIncrements);
}

TEST_CASE("metrics up-down gauges net out across threads", "[metrics_concurrency]") {
  Metrics metrics;
  UpDownGauge& connections = metrics.inbound_connections();
  constexpr int kMoves = 100'000;
  // Even threads open, odd threads close: as connections opened on one loop may close after
  // being counted on another.
  hammer(4, [&](int t) {
    for (int i = 0; i < kMoves; ++i) {
      if (t % 2 == 0) {
        connections.Increment();
      } else {
        connections.Decrement();
      }
    }
  });
  CHECK(connections.value() == 0);
  hammer(3, [&](int) {
    for (int i = 0; i < kMoves; ++i) connections.Increment();
  });
  CHECK(connections.value() == 3 * kMoves);
}

TEST_CASE("metrics histogram buckets, sum and count are exact under concurrency",
          "[metrics_concurrency]") {
  Metrics metrics;
  Histogram& accept = metrics.accept_duration();  // bounds ... 0.1, 0.25, 0.5, 1, 2.5 ... 10
  constexpr int kThreads = 4;
  constexpr int kRounds = 50'000;
  // Binary fractions and integers, so that the sum is exact in any order of addition.
  hammer(kThreads, [&](int) {
    for (int i = 0; i < kRounds; ++i) {
      accept.Observe(0.25);  // on the 0.25 bound
      accept.Observe(0.375);
      accept.Observe(2);
      accept.Observe(1024);  // above every bound
    }
  });
  const auto snapshot = accept.snapshot();
  const std::uint64_t per_value = std::uint64_t{kThreads} * kRounds;
  const auto& bounds = accept.bounds();
  auto cumulative_at = [&](double bound) {
    for (std::size_t i = 0; i < bounds.size(); ++i)
      if (bounds[i] == bound) return snapshot.cumulative[i];
    FAIL("no bucket " << bound);
    return std::uint64_t{0};
  };
  CHECK(cumulative_at(0.1) == 0);
  CHECK(cumulative_at(0.25) == per_value);
  CHECK(cumulative_at(0.5) == 2 * per_value);
  CHECK(cumulative_at(1) == 2 * per_value);
  CHECK(cumulative_at(2.5) == 3 * per_value);
  CHECK(cumulative_at(10) == 3 * per_value);
  CHECK(snapshot.cumulative.back() == 4 * per_value);
  CHECK(snapshot.count == 4 * per_value);
  CHECK(snapshot.sum == static_cast<double>(per_value) * (0.25 + 0.375 + 2 + 1024));
}

TEST_CASE("metrics scrapes during updates see counters only grow", "[metrics_concurrency]") {
  Metrics metrics;
  Counter& delivered = metrics.recipients_delivered();
  Histogram& delivery = metrics.delivery_duration();
  std::atomic<bool> done{false};
  std::uint64_t scrapes = 0;
  bool monotonic = true;
  std::thread scraper([&] {
    std::uint64_t last_counter = 0;
    std::uint64_t last_count = 0;
    while (!done.load()) {
      metrics.registry()->Collect();
      const std::uint64_t counter = delivered.value();
      const std::uint64_t count = delivery.snapshot().count;
      monotonic = monotonic && counter >= last_counter && count >= last_count;
      last_counter = counter;
      last_count = count;
      ++scrapes;
    }
  });
  constexpr int kIncrements = 200'000;
  hammer(2, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      delivered.Increment();
      delivery.Observe(0.02);
    }
  });
  done = true;
  scraper.join();
  CHECK(monotonic);
  CHECK(scrapes > 0);
  CHECK(delivered.value() == 2 * kIncrements);
  CHECK(delivery.snapshot().count == 2 * kIncrements);
}

}  // namespace
}  // namespace relayq::metrics
