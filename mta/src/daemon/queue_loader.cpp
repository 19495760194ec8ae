// The background readers of the queue at start, each on its own thread: load_schedule() hands
// the due index to the engines (posted to their loops) and the census counts the messages; the
// gauge sources run on the metrics server's thread. Both readers stop early once stop() begins.
#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "metrics/metrics.hpp"
#include "queue/clock.hpp"
#include "queue/message.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// Finds every unfinished message again after a restart, in the background once the relay
// takes mail, so that a large queue does not hold up new mail. The due index gives ids and
// times only, so memory stays small however large the queue is and no body is read. It is
// read as it was when the load began: what changes meanwhile reaches the engines directly,
// and an entry that no longer holds by the time it is used is dropped by the engine.
void Daemon::load_schedule() {
  const auto started = std::chrono::steady_clock::now();
  // Entries go to their loop in batches: one task per batch, not per entry.
  constexpr std::size_t kBatch = 4096;
  std::vector<std::vector<queue::DueEntry>> batches(workers_.size());
  const auto hand_over = [this, &batches](std::size_t loop) {
    DeliveryEngine* engine = workers_[loop]->engine.get();
    workers_[loop]->thread.post(
        [engine, batch = std::move(batches[loop])] { engine->add_due(batch); });
    batches[loop] = {};
    batches[loop].reserve(kBatch);
  };
  std::size_t entries = 0;
  const bool complete = store_->for_each_due_while([&](const queue::DueEntry& entry) {
    if (stopping_background_.load(std::memory_order_relaxed)) return false;
    const std::size_t loop = entry.id % workers_.size();
    batches[loop].push_back(entry);
    ++entries;
    if (batches[loop].size() >= kBatch) hand_over(loop);
    return true;
  });
  if (stopping_background_.load()) return;
  for (std::size_t loop = 0; loop < batches.size(); ++loop) {
    if (!batches[loop].empty()) hand_over(loop);
  }
  if (!complete) {
    spdlog::error("event=queue_load_incomplete due_recipients={}", entries);
    return;
  }
  // Each loop runs its tasks in order: once every loop has run this one, every entry is in
  // its engine's schedule.
  auto loops_left = std::make_shared<std::atomic<std::size_t>>(workers_.size());
  for (auto& worker : workers_) {
    worker->thread.post([loops_left, entries, started] {
      if (loops_left->fetch_sub(1) != 1) return;
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
      spdlog::info("event=queue_loaded due_recipients={} load_ms={}", entries, elapsed.count());
    });
  }
}

// The gauges Prometheus reads at each scrape: the census (counted once in the background at
// start, then kept current by every change) and RocksDB's own figures.
void Daemon::start_metrics_sources() {
  census_thread_ = std::thread([this] {
    const auto started = std::chrono::steady_clock::now();
    const auto count = store_->count_messages(stopping_background_);
    if (!count) return;
    census_.messages.fetch_add(static_cast<std::int64_t>(count->messages));
    census_.held.fetch_add(static_cast<std::int64_t>(count->held));
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::info("event=queue_counted messages={} held={} count_ms={}", count->messages,
                 count->held, elapsed.count());
  });
  metrics_.set_queue_gauges_source([this] {
    const auto messages = std::max<std::int64_t>(0, census_.messages.load());
    const auto held = std::clamp<std::int64_t>(census_.held.load(), 0, messages);
    const auto active = std::clamp<std::int64_t>(census_.active.load(), 0, messages - held);
    metrics::QueueGauges gauges{.ready = static_cast<std::uint64_t>(active),
                                .scheduled = static_cast<std::uint64_t>(messages - held - active),
                                .held = static_cast<std::uint64_t>(held),
                                .oldest_message_age_seconds = 0};
    if (const auto oldest = store_->oldest_id()) {
      const std::int64_t age_ms = queue::wall_clock_ms() - queue::id_time_ms(*oldest);
      gauges.oldest_message_age_seconds = std::max<double>(0, static_cast<double>(age_ms) / 1000);
    }
    return gauges;
  });
  metrics_.set_store_gauges_source([store = store_.get()] {
    const queue::StoreGauges g = store->gauges();
    return metrics::StoreGauges{.size_bytes = g.size_bytes,
                                .pending_compaction_bytes = g.pending_compaction_bytes,
                                .write_stall = g.write_stall,
                                .stall_micros_total = g.stall_micros_total,
                                .refusing_writes = g.refusing_writes};
  });
}

}  // namespace relayq::mta
