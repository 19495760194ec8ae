// Failed AUTH attempts by client address, shared by every loop: an address that failed too
// often lately is refused (454 4.7.0) without its password even being hashed, which bounds
// what a password-guessing client can try and what it costs us. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "dns/ip_address.hpp"

namespace relayq::mta {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  AuthThrottle(std::uint32_t max_failures, Clock::duration window)
      : max_failures_(max_failures), window_(window) {}

  // Too many failures from `client` within the window ending now.
  bool blocked(const dns::IpAddress& client, Clock::time_point now);
  // Returns the failures counted for `client` in the current window, this one included.
  std::uint32_t failed(const dns::IpAddress& client, Clock::time_point now);
  void succeeded(const dns::IpAddress& client);

 private:
  struct Entry {
    std::uint32_t failures = 0;
    Clock::time_point window_start;
  };
  // Bounds the table under a spray of addresses: expired entries go first.
  static constexpr std::size_t kMaxEntries = 100'000;
  void prune(Clock::time_point now);

  const std::uint32_t max_failures_;
  const Clock::duration window_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace relayq::mta
