// Connections by client address on one listener, shared by every loop: how many are open and
// how many began in the current minute. A few clients must not hold all of max_connections,
// nor reconnect as fast as they like (Postfix's anvil limits). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "dns/ip_address.hpp"

namespace relayq::mta {

class ClientLimits {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::uint32_t connections = 50;  // open at once
    std::uint32_t per_minute = 0;    // begun within a minute; 0 = no limit
  };
  enum class Verdict { admitted, too_many_connections, too_many_per_minute };

  // Counts a new connection from `client` when the limits allow it; an admitted one must be
  // released when it ends.
  Verdict admit(const dns::IpAddress& client, const Limits& limits, Clock::time_point now);
  void release(const dns::IpAddress& client);

 private:
  struct Entry {
    std::uint32_t open = 0;
    std::uint32_t begun = 0;  // within the minute from window_start
    Clock::time_point window_start;
  };
  // Bounds the table under a spray of addresses: idle ones go first.
  static constexpr std::size_t kMaxEntries = 100'000;
  void prune(Clock::time_point now);

  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace relayq::mta
