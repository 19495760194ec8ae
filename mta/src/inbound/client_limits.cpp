// Connections by client address: open counts and a fixed one-minute window of new ones, under
// one mutex taken twice per connection. Any loop thread.
#include "mta/inbound/client_limits.hpp"

namespace relayq::mta {

namespace {

constexpr auto kWindow = std::chrono::minutes(1);

}  // namespace

ClientLimits::Verdict ClientLimits::admit(const dns::IpAddress& client, const Limits& limits,
                                          Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= kMaxEntries) prune(now);
  Entry& entry = entries_[client.to_string()];
  if (now - entry.window_start >= kWindow) entry.window_start = now, entry.begun = 0;
  if (entry.open >= limits.connections) return Verdict::too_many_connections;
  if (limits.per_minute > 0 && entry.begun >= limits.per_minute)
    return Verdict::too_many_per_minute;
  ++entry.open;
  ++entry.begun;
  return Verdict::admitted;
}

void ClientLimits::release(const dns::IpAddress& client) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(client.to_string());
  if (it == entries_.end() || it->second.open == 0) return;
  --it->second.open;
}

void ClientLimits::prune(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& entry) {
    return entry.second.open == 0 && now - entry.second.window_start >= kWindow;
  });
}

}  // namespace relayq::mta
