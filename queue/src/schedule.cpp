// The schedule's heap operations.
#include "queue/schedule.hpp"

#include <algorithm>

namespace relayq::queue {

bool Schedule::later(const Slot& a, const Slot& b) {
  // Members are read by value: references to packed fields are not allowed.
  const std::int64_t a_due = a.due_ms, b_due = b.due_ms;
  if (a_due != b_due) return a_due > b_due;
  const MessageId a_id = a.id, b_id = b.id;
  if (a_id != b_id) return a_id > b_id;
  return a.recipient > b.recipient;
}

void Schedule::add(const DueEntry& entry) {
  heap_.push_back(Slot{entry.due_ms, entry.id, entry.recipient});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

std::optional<std::int64_t> Schedule::next_due_ms() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due_ms;
}

std::vector<DueEntry> Schedule::pop_due(std::int64_t now_ms, std::size_t limit) {
  std::vector<DueEntry> due;
  while (due.size() < limit && !heap_.empty() && heap_.front().due_ms <= now_ms) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Slot slot = heap_.back();
    heap_.pop_back();
    due.push_back(DueEntry{slot.due_ms, slot.id, slot.recipient});
  }
  return due;
}

}  // namespace relayq::queue
