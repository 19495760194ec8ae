// A destination's lane: connection and message limits, and the adaptive slow-down that lowers
// them. Any loop thread; every member runs under the lane's mutex.
#include <algorithm>
#include <cmath>

#include "mta/delivery/shaping.hpp"

namespace relayq::mta {

Lane::Lane(std::string name, LaneLimits limits, bool configured, unsigned loops)
    : name_(std::move(name)),
      loops_(std::max(1u, loops)),
      limits_(std::move(limits)),
      configured_(configured) {
  apply_level();
}

void Lane::set_limits(const LaneLimits& limits, bool configured) {
  const std::lock_guard lock(mutex_);
  limits_ = limits;
  configured_ = configured;
  apply_level();
}

void Lane::apply_level() {
  const double level = std::pow(limits_.slowdown_factor, steps_);
  const auto& shaping = limits_.shaping;
  const double base = shaping.max_message_rate > 0 ? shaping.max_message_rate : unlimited_base_;
  messages_.set_rate(steps_ == 0 ? shaping.max_message_rate : base * level);
  connection_rate_.set_rate(shaping.max_connection_rate * level);
  max_connections_ = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::floor(shaping.max_connections * level)));
  loop_share_ = (max_connections_ + loops_ - 1) / loops_;
}

std::int64_t Lane::open_connection(std::int64_t now_us, std::size_t open_here) {
  const std::lock_guard lock(mutex_);
  if (open_here >= loop_share_) return -1;
  if (const auto wait = connection_rate_.take(now_us); wait > 0) return wait;
  ++connections_;
  return 0;
}

void Lane::connection_closed() {
  const std::lock_guard lock(mutex_);
  if (connections_ > 0) --connections_;
}

bool Lane::should_close(std::uint32_t transactions, std::size_t open_here) const {
  const std::lock_guard lock(mutex_);
  const std::uint32_t per_connection = limits_.shaping.max_messages_per_connection;
  return (per_connection != 0 && transactions >= per_connection) || open_here > loop_share_;
}

std::size_t Lane::messages_available(std::int64_t now_us) const {
  const std::lock_guard lock(mutex_);
  return messages_.available(now_us);
}

std::int64_t Lane::message_wait(std::int64_t now_us) const {
  const std::lock_guard lock(mutex_);
  return messages_.wait(now_us);
}

std::int64_t Lane::take_message(std::int64_t now_us) {
  const std::lock_guard lock(mutex_);
  if (const auto wait = messages_.take(now_us); wait > 0) return wait;
  sends_[send_count_++ % sends_.size()] = now_us;
  return 0;
}

double Lane::measured_rate() const {
  const std::size_t count = std::min(send_count_, sends_.size());
  if (count < 2) return 1;
  const std::int64_t newest = sends_[(send_count_ - 1) % sends_.size()];
  const std::int64_t oldest = sends_[(send_count_ - count) % sends_.size()];
  const double span_s = static_cast<double>(std::max<std::int64_t>(1, newest - oldest)) / 1e6;
  return std::max(1.0, static_cast<double>(count - 1) / span_s);
}

bool Lane::slow_down(std::int64_t now_us) {
  const std::lock_guard lock(mutex_);
  successes_ = 0;
  if (limits_.slowdown_factor >= 1 || steps_ >= kMaxSteps ||
      now_us - last_step_us_ < kStepSpacingUs)
    return false;
  if (steps_ == 0 && limits_.shaping.max_message_rate <= 0) unlimited_base_ = measured_rate();
  ++steps_;
  last_step_us_ = now_us;
  apply_level();
  return true;
}

bool Lane::delivered() {
  const std::lock_guard lock(mutex_);
  if (steps_ == 0 || ++successes_ < limits_.recover_after) return false;
  successes_ = 0;
  if (--steps_ == 0) unlimited_base_ = 0;
  apply_level();
  return true;
}

ShapingStatus Lane::status() const {
  const std::lock_guard lock(mutex_);
  return {.name = name_,
          .configured = configured_,
          .slowdown_steps = steps_,
          .level = std::pow(limits_.slowdown_factor, steps_),
          .message_rate = messages_.rate(),
          .connections = connections_,
          .max_connections = max_connections_};
}

bool Lane::at_rest() const {
  const std::lock_guard lock(mutex_);
  return steps_ == 0 && connections_ == 0;
}

}  // namespace relayq::mta
