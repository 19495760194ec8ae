// Traffic shaping per destination. A Lane is what one destination (a recipient domain, a route,
// or the MX host set that several domains share) may use: connections open at once, messages
// per connection, a message rate and a connection rate, lowered step by step when the
// destination says "slow down" and raised again after successes. Lanes are shared by every
// loop's engine (each call takes the lane's mutex); the Shaper hands them out by name and
// applies a reload's limits to the lanes in use.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mta/admin/queue_admin.hpp"
#include "mta/config/config.hpp"
#include "mta/delivery/rate_limiter.hpp"

namespace relayq::mta {

struct LaneLimits {
  ShapingConfig shaping;
  double slowdown_factor = 0.5;      // a slow-down step multiplies rate and connections by this
  std::uint32_t recover_after = 20;  // successful deliveries that undo one step
};

class Lane {
 public:
  // Steps beyond this would starve the destination: 0.5^6 is 1/64 of its rate.
  static constexpr std::uint32_t kMaxSteps = 6;
  // A burst of "slow down" replies (one per connection, say) is one step, not one per reply.
  static constexpr std::int64_t kStepSpacingUs = 1'000'000;

  // `loops`: how many loops' destinations share the lane.
  Lane(std::string name, LaneLimits limits, bool configured, unsigned loops);

  const std::string& name() const { return name_; }
  void set_limits(const LaneLimits& limits, bool configured);

  // Each loop may open its share of max_connections (rounded up, so never none): a loop holding
  // the whole lane would starve the others, which cannot see its connections close.
  // Reserves a connection when this loop's share (`open_here`: its connections open or being
  // opened) and the connection rate allow one: 0. Else the microseconds until the rate allows
  // one (> 0), or -1 when the share is used (a connection of this loop's must close first).
  std::int64_t open_connection(std::int64_t now_us, std::size_t open_here);
  void connection_closed();
  // An idle connection that has begun `transactions` should close rather than take another
  // message: it carried max_messages_per_connection, or this loop has more connections open
  // (`open_here`) than a slow-down now allows.
  bool should_close(std::uint32_t transactions, std::size_t open_here) const;

  // Messages the rate allows now (without taking them), and the microseconds until the next.
  std::size_t messages_available(std::int64_t now_us) const;
  std::int64_t message_wait(std::int64_t now_us) const;
  // Takes the right to send one message: 0, or the microseconds to wait (> 0).
  std::int64_t take_message(std::int64_t now_us);

  // Adaptive back-off. Each returns true when it changed the level (worth a log line).
  bool slow_down(std::int64_t now_us);
  bool delivered();

  ShapingStatus status() const;
  // No slow-down in force and nothing open: forgetting the lane loses nothing.
  bool at_rest() const;

 private:
  // The limiters and the connection count from the limits and the steps in force.
  void apply_level();
  // Messages per second over the last sends (for a lane with no configured rate that is told
  // to slow down: it slows down from the pace it had).
  double measured_rate() const;

  mutable std::mutex mutex_;
  const std::string name_;
  const unsigned loops_;
  LaneLimits limits_;
  bool configured_ = false;
  RateLimiter messages_;
  RateLimiter connection_rate_;
  std::uint32_t connections_ = 0;      // open on all loops
  std::uint32_t max_connections_ = 0;  // on all loops, in force
  std::uint32_t loop_share_ = 0;       // of max_connections_
  std::uint32_t steps_ = 0;
  std::uint32_t successes_ = 0;  // since the last step
  std::int64_t last_step_us_ = -kStepSpacingUs;
  double unlimited_base_ = 0;             // the measured rate slowed from, for a lane with no rate
  std::array<std::int64_t, 32> sends_{};  // the last send times, a ring
  std::size_t send_count_ = 0;
};

// The shaping part of the config, as the Shaper applies it.
struct ShapingSettings {
  LaneLimits defaults;
  std::map<std::string, LaneLimits> named;  // "domain" and "mx:suffix" entries
  std::vector<std::string> mx_suffixes;     // the "mx:" entries' suffixes

  static ShapingSettings from(const Config& config);
  // The lane of a destination whose MX hosts are `hosts`: "mx:suffix" for the first entry one
  // of them is under, else empty.
  std::string mx_lane(const std::vector<std::string>& hosts) const;
};

class Shaper {
 public:
  Shaper(ShapingSettings settings, unsigned loops);
  // A reload: lanes in use take their new limits.
  void configure(ShapingSettings settings);
  // The lane called `name` (a [shaping] entry's name, else a destination's own).
  std::shared_ptr<Lane> lane(const std::string& name);
  bool has_mx_rules() const;
  std::string mx_lane(const std::vector<std::string>& hosts) const;
  // Lanes with a [shaping] entry (used yet or not) or a slow-down in force, by name.
  std::vector<ShapingStatus> status() const;

 private:
  void prune();

  mutable std::mutex mutex_;
  ShapingSettings settings_;
  const unsigned loops_;
  std::unordered_map<std::string, std::shared_ptr<Lane>> lanes_;
  std::size_t prune_at_ = 256;
};

}  // namespace relayq::mta
