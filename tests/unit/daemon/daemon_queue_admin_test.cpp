// The daemon's QueueAdmin over a real store: retry --all hands its retries to the loops a window
// at a time, so that a queue of a million messages is not a million loads at once.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "mta/daemon/daemon_queue_admin.hpp"
#include "queue/store.hpp"
#include "support/temp_dir.hpp"

namespace relayq::mta {
namespace {

queue::Message pending_message(queue::MessageId id, bool held = false) {
  queue::Message message;
  message.envelope.id = id;
  message.envelope.sender = "sender@example.test";
  queue::Recipient recipient;
  recipient.address = "rcpt@example.org";
  recipient.next_attempt_ms = 1'800'000'000'000;
  message.envelope.recipients.push_back(recipient);
  message.envelope.received_ms = 1'700'000'000'000;
  message.envelope.held = held;
  message.body = "Subject: t\r\n\r\nhello\r\n";
  message.envelope.size = message.body.size();
  return message;
}

// Stores `count` pending messages (and one held one) and returns the pending ids.
std::set<queue::MessageId> fill(queue::Store& store, std::size_t count) {
  std::set<queue::MessageId> ids;
  std::promise<void> all_stored;
  // An atomic, not a mutex: the writer thread must not touch anything of this frame after
  // set_value(), which lets fill() return (a lock held across it would be released on a
  // destroyed mutex).
  std::atomic<std::size_t> left = count + 1;
  bool all_ok = true;  // written by the writer thread only, read after the promise
  const auto stored = [&](const queue::StoreResult& result) {
    if (!result.ok()) all_ok = false;
    if (left.fetch_sub(1) == 1) all_stored.set_value();
  };
  for (std::size_t i = 0; i < count; ++i) {
    const auto id = store.next_id();
    ids.insert(id);
    store.submit(pending_message(id), stored);
  }
  store.submit(pending_message(store.next_id(), /*held=*/true), stored);
  all_stored.get_future().wait();
  CHECK(all_ok);
  return ids;
}

// The loops, as the admin sees them: records each dispatched change and lets the test finish
// them when it wants.
struct FakeLoops {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<queue::MessageId, QueueAdmin::Done>> waiting;
  std::multiset<queue::MessageId> dispatched;

  DaemonQueueAdmin::Dispatch dispatch() {
    return [this](queue::MessageId id, DeliveryEngine::AdminAction action, QueueAdmin::Done done) {
      CHECK(action == DeliveryEngine::AdminAction::retry);
      std::lock_guard lock(mutex);
      waiting.emplace_back(id, std::move(done));
      dispatched.insert(id);
      changed.notify_all();
    };
  }

  // Waits until `count` changes wait for an answer (or gives up after a long while).
  std::size_t wait_for(std::size_t count) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, std::chrono::seconds(30), [&] { return waiting.size() >= count; });
    return waiting.size();
  }

  // Answers every waiting change, as the engines would once stored.
  void finish_waiting() {
    std::vector<std::pair<queue::MessageId, QueueAdmin::Done>> batch;
    {
      std::lock_guard lock(mutex);
      batch.swap(waiting);
    }
    for (auto& [id, done] : batch) done({AdminOutcome::done, {}});
  }
};

}  // namespace

TEST_CASE("retry_all answers at once and keeps a bounded number of retries in flight",
          "[admin][retry]") {
  test::TempDir dir;
  auto store = queue::Store::open({.path = dir.store()});
  constexpr std::size_t kWindow = DaemonQueueAdmin::kRetriesInFlight;
  const auto ids = fill(*store, 2 * kWindow + 10);

  FakeLoops loops;
  DaemonQueueAdmin admin(*store, loops.dispatch(), std::make_shared<Shaper>(ShapingSettings{}, 1));
  std::size_t answered = 0;
  admin.retry_all([&](std::size_t count) { answered = count; });
  CHECK(answered == ids.size());  // the held message is not retried

  // A window's worth goes out; the rest waits for answers, not for time.
  CHECK(loops.wait_for(kWindow) == kWindow);
  std::size_t rounds = 0;
  for (;;) {
    loops.finish_waiting();
    {
      std::lock_guard lock(loops.mutex);
      if (loops.dispatched.size() == ids.size()) break;
    }
    loops.wait_for(1);
    {
      std::lock_guard lock(loops.mutex);
      REQUIRE(loops.waiting.size() <= kWindow);
    }
    REQUIRE(++rounds < 10 * ids.size());
  }
  // Every pending message exactly once.
  CHECK(std::set<queue::MessageId>(loops.dispatched.begin(), loops.dispatched.end()) == ids);
  CHECK(loops.dispatched.size() == ids.size());
}

TEST_CASE("stop drops the retries not handed on yet", "[admin][retry]") {
  test::TempDir dir;
  auto store = queue::Store::open({.path = dir.store()});
  constexpr std::size_t kWindow = DaemonQueueAdmin::kRetriesInFlight;
  fill(*store, kWindow + 5);

  FakeLoops loops;
  {
    DaemonQueueAdmin admin(*store, loops.dispatch(),
                           std::make_shared<Shaper>(ShapingSettings{}, 1));
    admin.retry_all([](std::size_t) {});
    CHECK(loops.wait_for(kWindow) == kWindow);
    admin.stop();
  }
  // Answers after the admin is gone are harmless, and nothing more goes out.
  loops.finish_waiting();
  std::lock_guard lock(loops.mutex);
  CHECK(loops.dispatched.size() == kWindow);
}

}  // namespace relayq::mta
