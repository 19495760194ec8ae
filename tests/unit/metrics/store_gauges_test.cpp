// Store::gauges(), the queue store's disk and compaction state behind relayq_queue_store_*:
// the size counts what is written whether it sits in the WAL or in SST files.
#include <catch2/catch.hpp>

#include <future>
#include <random>
#include <string>

#include "queue/message.hpp"
#include "queue/store.hpp"
#include "support/temp_dir.hpp"

namespace relayq::queue {
namespace {

using test::TempDir;

constexpr std::size_t kMessages = 200;
constexpr std::size_t kBodySize = 10'000;
constexpr std::uint64_t kWritten = kMessages * kBodySize;

void store_messages(Store& store) {
  std::mt19937 random(42);
  for (std::size_t i = 0; i < kMessages; ++i) {
    Message message;
    message.envelope.id = store.next_id();
    message.envelope.sender = "sender@example.test";
    message.envelope.recipients.emplace_back().address = "rcpt@example.org";
    message.envelope.received_ms = 1'700'000'000'000;
    // Random letters: compression (which has no entropy coder) cannot shrink them much.
    while (message.body.size() < kBodySize) message.body += static_cast<char>('a' + random() % 26);
    message.envelope.size = message.body.size();
    std::promise<StoreResult> stored;
    store.submit(std::move(message), [&](const StoreResult& result) { stored.set_value(result); });
    REQUIRE(stored.get_future().get().ok());
  }
}

TEST_CASE("metrics store gauges count the WAL and the SST files", "[metrics_store_gauges]") {
  TempDir dir;
  {
    auto store = Store::open({.path = dir.store()});
    const StoreGauges empty = store->gauges();
    CHECK_FALSE(empty.write_stall);
    CHECK(empty.stall_micros_total == 0);
    CHECK(empty.size_bytes < kWritten);

    store_messages(*store);
    const StoreGauges written = store->gauges();
    CHECK(written.size_bytes >= empty.size_bytes + kWritten);
    CHECK_FALSE(written.write_stall);
    store->close();
    CHECK(store->gauges().size_bytes == written.size_bytes);
  }
  // Reopening replays the WAL into SST files: the size follows the data there.
  auto store = Store::open({.path = dir.store()});
  CHECK(store->gauges().size_bytes >= kWritten);
  CHECK_FALSE(store->gauges().write_stall);
}

TEST_CASE("metrics store gauges work on a read-only store", "[metrics_store_gauges]") {
  TempDir dir;
  {
    auto store = Store::open({.path = dir.store()});
    store_messages(*store);
  }
  auto store = Store::open({.path = dir.store(), .read_only = true});
  CHECK(store->gauges().size_bytes >= kWritten);
}

}  // namespace
}  // namespace relayq::queue
