// The in-memory, time-ordered schedule of due recipients that the delivery side pops from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "queue/store.hpp"

namespace relayq::queue {

// A min-heap of DueEntry ordered by (due_ms, id, recipient), the order of the store's "due"
// index. Filled at start from Store::for_each_due_while(), then fed as messages arrive or are
// rescheduled.
//
// Not thread-safe: its owner (the scheduler) serialises every call.
// Entries are only ever removed by pop_due(): after a reschedule or a delete the old entry
// stays and is popped later, so the consumer checks each popped entry against the envelope
// (state still pending, next attempt time matching) and drops stale ones.
class Schedule {
 public:
  void add(const DueEntry& entry);
  // Avoids regrowing while the daemon loads a queue of known size.
  void reserve(std::size_t entries) { heap_.reserve(entries); }

  std::size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }
  // Bytes held by the entries' storage (capacity included), for memory accounting.
  std::size_t memory_bytes() const { return heap_.capacity() * sizeof(Slot); }

  // The earliest due time, to arm a timer; empty when nothing is scheduled.
  std::optional<std::int64_t> next_due_ms() const;

  // Removes and returns, earliest first, up to `limit` entries due at or before now_ms.
  std::vector<DueEntry> pop_due(std::int64_t now_ms,
                                std::size_t limit = std::numeric_limits<std::size_t>::max());

  // Bytes per entry. DueEntry itself is padded to 24; packed, a million pending recipients
  // cost about 18 MiB (plus growth slack, which reserve() avoids).
  static constexpr std::size_t kEntryBytes = 18;

 private:
  struct [[gnu::packed]] Slot {
    std::int64_t due_ms;
    MessageId id;
    std::uint16_t recipient;
  };
  static_assert(sizeof(Slot) == kEntryBytes);

  // std::*_heap builds a max-heap; "later" as the order puts the earliest entry on top.
  static bool later(const Slot& a, const Slot& b);

  std::vector<Slot> heap_;
};

}  // namespace relayq::queue
