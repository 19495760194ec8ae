// GCRA arithmetic: an event is allowed while the theoretical arrival time is at most
// `tolerance` ahead of now, and each event moves it one interval on. Any thread (the caller
// guards an instance).
#include "mta/delivery/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace relayq::mta {

RateLimiter::RateLimiter(double per_second, double burst) : burst_(std::max(1.0, burst)) {
  set_rate(per_second);
}

void RateLimiter::set_rate(double per_second) {
  per_second_ = per_second > 0 ? per_second : 0;
  interval_us_ = per_second_ > 0 ? std::llround(1e6 / per_second_) : 0;
  tolerance_us_ = std::llround(static_cast<double>(interval_us_) * (burst_ - 1));
}

std::int64_t RateLimiter::wait(std::int64_t now_us) const {
  if (!limited()) return 0;
  return std::max<std::int64_t>(0, arrival_us_ - tolerance_us_ - now_us);
}

std::size_t RateLimiter::available(std::int64_t now_us) const {
  if (!limited()) return std::numeric_limits<std::size_t>::max();
  std::size_t count = 0;
  for (std::int64_t arrival = std::max(arrival_us_, now_us); arrival - tolerance_us_ <= now_us;
       arrival += interval_us_)
    ++count;
  return count;
}

std::int64_t RateLimiter::take(std::int64_t now_us) {
  if (const auto later = wait(now_us); later > 0) return later;
  if (limited()) arrival_us_ = std::max(arrival_us_, now_us) + interval_us_;
  return 0;
}

}  // namespace relayq::mta
