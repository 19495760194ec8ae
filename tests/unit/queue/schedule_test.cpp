// The in-memory schedule: order, due-time cut-off, limits and memory per entry.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <tuple>
#include <vector>

#include "queue/schedule.hpp"

namespace relayq::queue {
namespace {

auto order_key(const DueEntry& entry) {
  return std::make_tuple(entry.due_ms, entry.id, entry.recipient);
}

bool same(const DueEntry& a, const DueEntry& b) {
  return order_key(a) == order_key(b);
}

}  // namespace

TEST_CASE("an empty schedule has nothing due", "[queue][schedule]") {
  Schedule schedule;
  CHECK(schedule.empty());
  CHECK(schedule.size() == 0);
  CHECK_FALSE(schedule.next_due_ms());
  CHECK(schedule.pop_due(std::numeric_limits<std::int64_t>::max()).empty());
}

TEST_CASE("the schedule pops in (due, id, recipient) order", "[queue][schedule]") {
  std::mt19937_64 random(42);
  std::vector<DueEntry> entries;
  for (int i = 0; i < 5000; ++i) {
    // Few distinct times and ids, so ties on due_ms and on id are common.
    entries.push_back(DueEntry{static_cast<std::int64_t>(random() % 50),
                               static_cast<MessageId>(random() % 40),
                               static_cast<std::uint16_t>(random() % 5)});
  }
  Schedule schedule;
  for (const auto& entry : entries) schedule.add(entry);
  CHECK(schedule.size() == entries.size());
  CHECK(schedule.next_due_ms() ==
        std::min_element(entries.begin(), entries.end(), [](auto& a, auto& b) {
          return a.due_ms < b.due_ms;
        })->due_ms);

  const auto popped = schedule.pop_due(std::numeric_limits<std::int64_t>::max());
  std::sort(entries.begin(), entries.end(),
            [](auto& a, auto& b) { return order_key(a) < order_key(b); });
  REQUIRE(popped.size() == entries.size());
  CHECK(std::equal(popped.begin(), popped.end(), entries.begin(), same));
  CHECK(schedule.empty());
}

TEST_CASE("pop_due takes only what is due, at most limit at a time", "[queue][schedule]") {
  Schedule schedule;
  schedule.add({300, 7, 0});
  schedule.add({100, 9, 1});
  schedule.add({100, 9, 0});
  schedule.add({200, 1, 0});
  schedule.add({100, 2, 4});

  CHECK(schedule.next_due_ms() == 100);
  CHECK(schedule.pop_due(99).empty());

  auto first = schedule.pop_due(100, 2);
  REQUIRE(first.size() == 2);
  CHECK(same(first[0], {100, 2, 4}));
  CHECK(same(first[1], {100, 9, 0}));
  CHECK(schedule.size() == 3);

  auto second = schedule.pop_due(250);
  REQUIRE(second.size() == 2);
  CHECK(same(second[0], {100, 9, 1}));
  CHECK(same(second[1], {200, 1, 0}));
  CHECK(schedule.next_due_ms() == 300);

  CHECK(schedule.pop_due(1000, 0).empty());
  CHECK(schedule.size() == 1);

  // Something earlier arriving later goes to the front.
  schedule.add({50, 3, 0});
  CHECK(schedule.next_due_ms() == 50);
  auto rest = schedule.pop_due(1000);
  REQUIRE(rest.size() == 2);
  CHECK(same(rest[0], {50, 3, 0}));
  CHECK(same(rest[1], {300, 7, 0}));
}

TEST_CASE("a million scheduled recipients fit in well under 64 MiB", "[queue][schedule]") {
  CHECK(Schedule::kEntryBytes == 18);
  CHECK(Schedule::kEntryBytes < sizeof(DueEntry));

  Schedule schedule;
  constexpr std::size_t kEntries = 1'000'000;
  const std::int64_t base = 1'700'000'000'000;
  for (std::size_t i = 0; i < kEntries; ++i) {
    // Arrival order is not due order: a reversed-ish sequence exercises the heap.
    schedule.add({base + static_cast<std::int64_t>((kEntries - i) % 86'400'000),
                  (static_cast<MessageId>(base) << 20) + i, static_cast<std::uint16_t>(i % 3)});
  }
  CHECK(schedule.size() == kEntries);
  CHECK(schedule.memory_bytes() < 32u * 1024 * 1024);  // growth slack included

  Schedule reserved;
  reserved.reserve(kEntries);
  CHECK(reserved.memory_bytes() == kEntries * Schedule::kEntryBytes);

  auto due = schedule.pop_due(std::numeric_limits<std::int64_t>::max(), 1000);
  REQUIRE(due.size() == 1000);
  for (std::size_t i = 1; i < due.size(); ++i) CHECK(order_key(due[i - 1]) <= order_key(due[i]));
}

}  // namespace relayq::queue
