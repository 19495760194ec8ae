// Message ids: their text form, and the store's id source across threads and restarts.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "queue/message.hpp"
#include "queue/store.hpp"

namespace relayq::queue {
namespace {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = "/tmp/relayq-id-test-XXXXXX";
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string store() const { return (path / "queue").string(); }
};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void store_message(Store& store, MessageId id) {
  Message message;
  message.envelope.id = id;
  message.envelope.recipients.emplace_back().address = "rcpt@example.test";
  message.body = "Subject: id\r\n\r\nbody\r\n";
  std::promise<StoreResult> stored;
  store.submit(std::move(message), [&](const StoreResult& result) { stored.set_value(result); });
  REQUIRE(stored.get_future().get().ok());
}

}  // namespace

TEST_CASE("format_id writes 16 upper-case hex digits", "[queue][id]") {
  CHECK(format_id(0) == "0000000000000000");
  CHECK(format_id(0xABCDEF0123456789ULL) == "ABCDEF0123456789");
  CHECK(format_id(0x1F) == "000000000000001F");
  CHECK(format_id(~MessageId{0}) == "FFFFFFFFFFFFFFFF");
}

TEST_CASE("parse_id reads exactly 16 hex digits in either case", "[queue][id]") {
  CHECK(parse_id("ABCDEF0123456789") == MessageId{0xABCDEF0123456789ULL});
  CHECK(parse_id("abcdef0123456789") == MessageId{0xABCDEF0123456789ULL});
  CHECK(parse_id("0000000000000000") == MessageId{0});
  CHECK(parse_id("FFFFFFFFFFFFFFFF") == ~MessageId{0});
  for (const MessageId id : {MessageId{1}, MessageId{0x0123456789ABCDEFULL}, ~MessageId{0} - 7}) {
    CHECK(parse_id(format_id(id)) == id);
  }

  CHECK_FALSE(parse_id(""));
  CHECK_FALSE(parse_id("ABCDEF012345678"));    // 15 digits
  CHECK_FALSE(parse_id("ABCDEF01234567890"));  // 17 digits
  CHECK_FALSE(parse_id("0xCDEF0123456789"));
  CHECK_FALSE(parse_id("ABCDEF012345678G"));
  CHECK_FALSE(parse_id("-BCDEF0123456789"));
  CHECK_FALSE(parse_id("+BCDEF0123456789"));
  CHECK_FALSE(parse_id(" BCDEF0123456789"));
  CHECK_FALSE(
      parse_id(std::string_view("ABCDEF01\0"
                                "3456789",
                                16)));
}

TEST_CASE("recipient states have names", "[queue][id]") {
  CHECK(to_string(RecipientState::pending) == "pending");
  CHECK(to_string(RecipientState::delivered) == "delivered");
  CHECK(to_string(RecipientState::bounced) == "bounced");
}

TEST_CASE("next_id is unique and increasing across threads", "[queue][id]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const std::int64_t before = wall_ms();

  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<MessageId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ids[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(store->next_id());
    });
  }
  for (auto& thread : threads) thread.join();

  std::set<MessageId> all;
  for (const auto& mine : ids) {
    // Each caller sees its own ids strictly increase.
    for (std::size_t i = 1; i < mine.size(); ++i) REQUIRE(mine[i - 1] < mine[i]);
    all.insert(mine.begin(), mine.end());
  }
  CHECK(all.size() == std::size_t{kThreads} * kPerThread);
  // Time-ordered: the upper bits are the wall clock in ms (160000 ids may borrow a few ms).
  const auto first_ms = static_cast<std::int64_t>(*all.begin() >> 20);
  CHECK(first_ms >= before);
  CHECK(first_ms <= wall_ms());
}

TEST_CASE("next_id never repeats an id after a reopen", "[queue][id]") {
  TempDir dir;
  MessageId issued = 0;
  {
    auto store = Store::open({.path = dir.store()});
    issued = store->next_id();
    store_message(*store, issued);
  }
  {
    auto store = Store::open({.path = dir.store()});
    CHECK(store->next_id() > issued);
  }

  SECTION("even when the clock went back since the last run") {
    // A stored id an hour in the future is what a clock stepped back by an hour looks like.
    const MessageId future = static_cast<MessageId>(wall_ms() + 3600 * 1000) << 20;
    {
      auto store = Store::open({.path = dir.store()});
      store_message(*store, future);
    }
    auto store = Store::open({.path = dir.store()});
    const MessageId next = store->next_id();
    CHECK(next == future + 1);
    CHECK(store->next_id() == future + 2);
  }
}

}  // namespace relayq::queue
