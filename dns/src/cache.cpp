// The answer cache shared by every loop's resolver: TTL-bounded entries behind one mutex.
#include "cache.hpp"

namespace relayq::dns {

std::shared_ptr<Cache> make_cache(std::size_t max_entries) {
  return std::make_shared<Cache>(max_entries);
}

Cache::Cache(std::size_t max_entries) : max_entries_(max_entries) {}

std::shared_ptr<const Lookup> Cache::find(const Question& question) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  const auto found = entries_.find(question);
  if (found == entries_.end()) return nullptr;
  if (found->second.expires <= now) {
    entries_.erase(found);
    return nullptr;
  }
  return found->second.lookup;
}

void Cache::store(const Question& question, std::shared_ptr<const Lookup> lookup,
                  std::chrono::seconds ttl) {
  if (ttl <= std::chrono::seconds::zero() || max_entries_ == 0) return;
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  if (!entries_.contains(question)) make_room(now);
  entries_.insert_or_assign(question, Entry{std::move(lookup), now + ttl});
}

// Called with the mutex held, before inserting a new key.
void Cache::make_room(Clock::time_point now) {
  if (entries_.size() < max_entries_) return;
  std::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
  // Still full of live answers: starting afresh costs only repeated queries, and keeps this
  // amortized O(1) where evicting one entry per insert would sweep the map every time.
  if (entries_.size() >= max_entries_) entries_.clear();
}

}  // namespace relayq::dns
