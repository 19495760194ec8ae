// The generic cell rate algorithm (GCRA): a token bucket kept as one time, "the theoretical
// arrival time" of the next event. Plain arithmetic on times the caller gives (microseconds of a
// monotonic clock); not thread-safe by itself (a Lane guards it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace relayq::mta {

class RateLimiter {
 public:
  // `per_second` 0 = no limit. `burst`: events allowed at once after a quiet spell; 1 keeps
  // the spacing exact, a little more lets a late wake-up catch up without losing rate.
  explicit RateLimiter(double per_second = 0, double burst = 2);

  // A new rate from now on; what was already spent stays spent.
  void set_rate(double per_second);
  double rate() const { return per_second_; }
  bool limited() const { return per_second_ > 0; }

  // Microseconds until an event may happen (0 = now), without taking it.
  std::int64_t wait(std::int64_t now_us) const;
  // How many events may happen now, one after the other (the burst at most; "many" unlimited).
  std::size_t available(std::int64_t now_us) const;
  // Takes an event if one may happen now; else returns the microseconds to wait (> 0).
  std::int64_t take(std::int64_t now_us);

 private:
  double per_second_ = 0;
  double burst_ = 2;
  std::int64_t interval_us_ = 0;   // between events at the rate
  std::int64_t tolerance_us_ = 0;  // how far ahead of now the arrival time may run
  std::int64_t arrival_us_ = 0;    // the theoretical arrival time of the next event
};

}  // namespace relayq::mta
