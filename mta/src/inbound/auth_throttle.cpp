// Failed AUTH attempts by client address: a fixed window per address, under one mutex (taken
// once per AUTH attempt, far rarer than anything else a connection does). Any loop thread.
#include "mta/inbound/auth_throttle.hpp"

namespace relayq::mta {

bool AuthThrottle::blocked(const dns::IpAddress& client, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(client.to_string());
  return it != entries_.end() && now - it->second.window_start < window_ &&
         it->second.failures >= max_failures_;
}

std::uint32_t AuthThrottle::failed(const dns::IpAddress& client, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= kMaxEntries) prune(now);
  Entry& entry = entries_[client.to_string()];
  if (entry.failures == 0 || now - entry.window_start >= window_) entry = {0, now};
  return ++entry.failures;
}

void AuthThrottle::succeeded(const dns::IpAddress& client) {
  std::lock_guard lock(mutex_);
  entries_.erase(client.to_string());
}

void AuthThrottle::prune(Clock::time_point now) {
  std::erase_if(entries_,
                [&](const auto& entry) { return now - entry.second.window_start >= window_; });
  // Still full: a flood of fresh addresses; forgetting them all is the lesser harm.
  if (entries_.size() >= kMaxEntries) entries_.clear();
}

}  // namespace relayq::mta
