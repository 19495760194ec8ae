// Store::commit and Store::load: due-index updates, deletion, hold and release, DSNs in the same
// batch, ordering, which batches are synced, and asynchronous reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "queue/message.hpp"
#include "queue/store.hpp"
#include "support/temp_dir.hpp"

namespace relayq::queue {
namespace {

using test::TempDir;

constexpr std::int64_t kReceived = 1'700'000'000'000;

Recipient recipient(std::string address) {
  Recipient recipient;
  recipient.address = std::move(address);
  return recipient;
}

Message make_message(MessageId id, std::vector<std::string> addresses) {
  Message message;
  message.envelope.id = id;
  message.envelope.sender = "sender@example.test";
  for (auto& address : addresses) message.envelope.recipients.push_back(recipient(address));
  message.envelope.received_ms = kReceived;
  message.body = "Subject: commit test\r\n\r\nbody of " + format_id(id) + "\r\n";
  message.envelope.size = message.body.size();
  return message;
}

StoreResult submit_and_wait(Store& store, Message message) {
  std::promise<StoreResult> stored;
  store.submit(std::move(message), [&](const StoreResult& result) { stored.set_value(result); });
  return stored.get_future().get();
}

StoreResult commit_and_wait(Store& store, const Envelope& before, const Envelope& after,
                            std::optional<Message> dsn = std::nullopt) {
  std::promise<StoreResult> committed;
  store.commit(before, after, std::move(dsn),
               [&](const StoreResult& result) { committed.set_value(result); });
  return committed.get_future().get();
}

std::optional<Message> load_and_wait(Store& store, MessageId id, bool with_body) {
  std::promise<std::optional<Message>> loaded;
  store.load(id, with_body,
             [&](std::optional<Message> message) { loaded.set_value(std::move(message)); });
  return loaded.get_future().get();
}

using DueTuple = std::tuple<std::int64_t, MessageId, std::uint16_t>;

std::vector<DueTuple> due_index(Store& store) {
  std::vector<DueTuple> entries;
  store.for_each_due_while([&](const DueEntry& e) {
    entries.emplace_back(e.due_ms, e.id, e.recipient);
    return true;
  });
  return entries;
}

// One failed attempt, as delivery records it.
void defer(Recipient& recipient, std::int64_t next_attempt_ms) {
  ++recipient.attempts;
  recipient.last_reply = "451 4.3.0 try later";
  recipient.history.push_back({next_attempt_ms - 300'000, "mx.example.org[192.0.2.1]:25",
                               recipient.last_reply, "", "network"});
  recipient.next_attempt_ms = next_attempt_ms;
}

void finish(Recipient& recipient, RecipientState state) {
  ++recipient.attempts;
  recipient.state = state;
  recipient.last_reply = state == RecipientState::delivered ? "250 ok" : "550 5.1.1 no such user";
}

}  // namespace

TEST_CASE("commit stores the new envelope and moves its due entries", "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org", "b@example.org"});
  const MessageId id = message.envelope.id;
  REQUIRE(submit_and_wait(*store, message).ok());
  REQUIRE(due_index(*store) == std::vector<DueTuple>{{kReceived, id, 0}, {kReceived, id, 1}});

  Envelope after = message.envelope;
  defer(after.recipients[0], kReceived + 300'000);
  after.delay_warned = true;
  REQUIRE(commit_and_wait(*store, message.envelope, after).ok());

  CHECK(store->load_envelope(id) == after);
  CHECK(store->load_body(id) == message.body);
  const std::vector<DueTuple> expected{{kReceived, id, 1}, {kReceived + 300'000, id, 0}};
  CHECK(due_index(*store) == expected);
  CHECK(store->stats().commits == 1);

  // Attempts, next times and the delay warning survive a restart.
  store.reset();
  store = Store::open({.path = dir.store()});
  CHECK(store->load_envelope(id) == after);
  CHECK(due_index(*store) == expected);
}

TEST_CASE("partial delivery keeps the message with only its pending recipients due",
          "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message =
      make_message(store->next_id(), {"a@example.org", "b@example.net", "c@example.com"});
  const MessageId id = message.envelope.id;
  REQUIRE(submit_and_wait(*store, message).ok());

  Envelope after = message.envelope;
  finish(after.recipients[0], RecipientState::delivered);
  finish(after.recipients[1], RecipientState::bounced);
  defer(after.recipients[2], kReceived + 600'000);
  REQUIRE(commit_and_wait(*store, message.envelope, after).ok());

  CHECK(store->load_envelope(id) == after);
  CHECK(store->load_body(id) == message.body);
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived + 600'000, id, 2}});
}

TEST_CASE("a commit that leaves no recipient pending deletes the message", "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message done = make_message(store->next_id(), {"a@example.org", "b@example.org"});
  const Message other = make_message(store->next_id(), {"c@example.org"});
  REQUIRE(submit_and_wait(*store, done).ok());
  REQUIRE(submit_and_wait(*store, other).ok());

  // Spread over two commits: the second one also removes an entry the first one moved.
  Envelope middle = done.envelope;
  finish(middle.recipients[0], RecipientState::delivered);
  defer(middle.recipients[1], kReceived + 60'000);
  REQUIRE(commit_and_wait(*store, done.envelope, middle).ok());
  Envelope last = middle;
  finish(last.recipients[1], RecipientState::bounced);
  REQUIRE(commit_and_wait(*store, middle, last).ok());

  CHECK_FALSE(store->load_envelope(done.envelope.id));
  CHECK_FALSE(store->load_body(done.envelope.id));
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived, other.envelope.id, 0}});
  CHECK(store->load_envelope(other.envelope.id) == other.envelope);

  // And the deletion survives a restart.
  store.reset();
  store = Store::open({.path = dir.store()});
  CHECK_FALSE(store->load_envelope(done.envelope.id));
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived, other.envelope.id, 0}});
}

TEST_CASE("holding a message removes its due entries and releasing restores them",
          "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org", "b@example.org"});
  const MessageId id = message.envelope.id;
  REQUIRE(submit_and_wait(*store, message).ok());
  Envelope deferred = message.envelope;
  defer(deferred.recipients[1], kReceived + 900'000);
  REQUIRE(commit_and_wait(*store, message.envelope, deferred).ok());

  Envelope held = deferred;
  held.held = true;
  REQUIRE(commit_and_wait(*store, deferred, held).ok());
  CHECK(due_index(*store).empty());
  CHECK(store->load_envelope(id) == held);
  CHECK(due_entries(held).empty());

  Envelope released = held;
  released.held = false;
  REQUIRE(commit_and_wait(*store, held, released).ok());
  CHECK(due_index(*store) ==
        std::vector<DueTuple>{{kReceived, id, 0}, {kReceived + 900'000, id, 1}});
  CHECK(store->load_envelope(id) == released);
}

TEST_CASE("a commit with a DSN stores the bounce and the change in one synced batch",
          "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"gone@example.org"});
  REQUIRE(submit_and_wait(*store, message).ok());
  const StoreStats before_stats = store->stats();

  Envelope bounced = message.envelope;
  finish(bounced.recipients[0], RecipientState::bounced);
  Message dsn = make_message(store->next_id(), {"sender@example.test"});
  dsn.envelope.sender.clear();
  dsn.envelope.received_ms = kReceived + 5'000;
  const MessageId dsn_id = dsn.envelope.id;
  REQUIRE(commit_and_wait(*store, message.envelope, bounced, dsn).ok());

  const StoreStats stats = store->stats();
  CHECK(stats.batches == before_stats.batches + 1);
  CHECK(stats.synced_batches == before_stats.synced_batches + 1);
  CHECK(stats.messages == before_stats.messages + 1);
  CHECK(stats.commits == before_stats.commits + 1);

  CHECK_FALSE(store->load_envelope(message.envelope.id));
  CHECK(store->load_envelope(dsn_id) == dsn.envelope);
  CHECK(store->load_body(dsn_id) == dsn.body);
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived + 5'000, dsn_id, 0}});

  // The DSN's id counts for the id source after a restart like any message's.
  store.reset();
  store = Store::open({.path = dir.store()});
  CHECK(store->next_id() > dsn_id);
}

TEST_CASE("a commit whose DSN is refused changes nothing", "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"gone@example.org"});
  REQUIRE(submit_and_wait(*store, message).ok());

  Envelope bounced = message.envelope;
  finish(bounced.recipients[0], RecipientState::bounced);
  Message dsn = make_message(store->next_id(), {});
  dsn.envelope.recipients.resize(65537, recipient("many@example.test"));
  CHECK(commit_and_wait(*store, message.envelope, bounced, dsn).error == StoreErrorKind::io_error);
  CHECK(store->load_envelope(message.envelope.id) == message.envelope);
  CHECK_FALSE(store->load_envelope(dsn.envelope.id));
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived, message.envelope.id, 0}});
}

TEST_CASE("commits of one message apply in the order they were made", "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org", "b@example.org"});
  const MessageId id = message.envelope.id;
  REQUIRE(submit_and_wait(*store, message).ok());

  // Issued back to back without waiting, so that many share a batch.
  constexpr int kCommits = 200;
  std::mutex order_mutex;
  std::vector<int> completion_order;
  std::atomic<int> failures{0};
  std::promise<void> all_done;
  Envelope before = message.envelope;
  for (int i = 1; i <= kCommits; ++i) {
    Envelope after = before;
    defer(after.recipients[static_cast<std::size_t>(i % 2)], kReceived + i * 1000);
    store->commit(before, after, std::nullopt, [&, i](const StoreResult& result) {
      if (!result.ok()) ++failures;
      {
        std::lock_guard lock(order_mutex);
        completion_order.push_back(i);
      }
      // After the lock is released: set_value() lets the test go on and destroy the mutex.
      if (i == kCommits) all_done.set_value();
    });
    before = std::move(after);
  }
  all_done.get_future().wait();

  CHECK(failures == 0);
  REQUIRE(completion_order.size() == kCommits);
  CHECK(std::is_sorted(completion_order.begin(), completion_order.end()));
  CHECK(store->load_envelope(id) == before);
  CHECK(before.recipients[0].attempts == kCommits / 2);
  // Only the last time of each recipient is left in the index.
  CHECK(due_index(*store) == std::vector<DueTuple>{{kReceived + (kCommits - 1) * 1000, id, 1},
                                                   {kReceived + kCommits * 1000, id, 0}});
  INFO("batches: " << store->stats().batches);
  CHECK(store->stats().commits == kCommits);
}

TEST_CASE("a batch is synced only when it carries a new message", "[queue][commit]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org"});
  REQUIRE(submit_and_wait(*store, message).ok());
  StoreStats stats = store->stats();
  CHECK(stats.batches == 1);
  CHECK(stats.synced_batches == 1);

  Envelope before = message.envelope;
  for (int i = 1; i <= 3; ++i) {
    Envelope after = before;
    defer(after.recipients[0], kReceived + i * 60'000);
    REQUIRE(commit_and_wait(*store, before, after).ok());
    before = std::move(after);
  }
  stats = store->stats();
  CHECK(stats.batches == 4);
  CHECK(stats.synced_batches == 1);  // updates alone are not synced
  CHECK(stats.commits == 3);

  REQUIRE(submit_and_wait(*store, make_message(store->next_id(), {"b@example.org"})).ok());
  stats = store->stats();
  CHECK(stats.batches == 5);
  CHECK(stats.synced_batches == 2);
  CHECK(stats.messages == 2);
  CHECK(stats.failed_batches == 0);

  // Unsynced is not lost to a clean restart: the next open replays the WAL.
  store.reset();
  store = Store::open({.path = dir.store()});
  CHECK(store->load_envelope(message.envelope.id) == before);
  CHECK(due_index(*store).back() == DueTuple{kReceived + 180'000, message.envelope.id, 0});
}

TEST_CASE("commits are refused when they cannot be written", "[queue][commit]") {
  TempDir dir;
  const Message message = make_message(1, {"a@example.org"});
  {
    auto store = Store::open({.path = dir.store()});
    REQUIRE(submit_and_wait(*store, message).ok());
    Envelope other_id = message.envelope;
    other_id.id = 2;
    CHECK(commit_and_wait(*store, message.envelope, other_id).error == StoreErrorKind::io_error);

    store->close();
    Envelope after = message.envelope;
    defer(after.recipients[0], kReceived + 1000);
    StoreResult late;
    bool ran = false;
    store->commit(message.envelope, after, std::nullopt, [&](const StoreResult& result) {
      late = result;
      ran = true;
    });
    CHECK(ran);  // at once, on this thread
    CHECK(late.error == StoreErrorKind::shutting_down);
    CHECK(store->load_envelope(1) == message.envelope);
  }
  auto read_only = Store::open({.path = dir.store(), .read_only = true});
  CHECK(commit_and_wait(*read_only, message.envelope, message.envelope).error ==
        StoreErrorKind::io_error);
}

TEST_CASE("load reads a message on the reader thread with or without its body", "[queue][load]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org"});
  REQUIRE(submit_and_wait(*store, message).ok());

  const auto with_body = load_and_wait(*store, message.envelope.id, true);
  REQUIRE(with_body);
  CHECK(with_body->envelope == message.envelope);
  CHECK(with_body->body == message.body);

  const auto envelope_only = load_and_wait(*store, message.envelope.id, false);
  REQUIRE(envelope_only);
  CHECK(envelope_only->envelope == message.envelope);
  CHECK(envelope_only->body.empty());

  CHECK_FALSE(load_and_wait(*store, message.envelope.id + 1, true));
  CHECK_FALSE(load_and_wait(*store, message.envelope.id + 1, false));

  std::promise<std::thread::id> thread;
  store->load(message.envelope.id, false,
              [&](std::optional<Message>) { thread.set_value(std::this_thread::get_id()); });
  CHECK(thread.get_future().get() != std::this_thread::get_id());

  // A read-only store reads too.
  store.reset();
  auto read_only = Store::open({.path = dir.store(), .read_only = true});
  const auto reread = load_and_wait(*read_only, message.envelope.id, true);
  REQUIRE(reread);
  CHECK(reread->body == message.body);
}

TEST_CASE("close answers the loads already asked for and later ones at once with nothing",
          "[queue][load]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const Message message = make_message(store->next_id(), {"a@example.org"});
  REQUIRE(submit_and_wait(*store, message).ok());

  constexpr int kLoads = 500;
  std::atomic<int> found{0};
  for (int i = 0; i < kLoads; ++i) {
    store->load(message.envelope.id, true, [&](std::optional<Message> loaded) {
      if (loaded && loaded->body == message.body) ++found;
    });
  }
  store->close();
  CHECK(found == kLoads);

  bool ran = false;
  bool empty = false;
  store->load(message.envelope.id, true, [&](std::optional<Message> loaded) {
    ran = true;
    empty = !loaded;
  });
  CHECK(ran);  // at once, on this thread
  CHECK(empty);
  // The synchronous reads still work after close.
  CHECK(store->load_envelope(message.envelope.id) == message.envelope);
}

}  // namespace relayq::queue
