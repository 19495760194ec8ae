// Each destination's lane (shaping.hpp): which one it is, the wake-ups a rate sets, and what the
// replies teach it (slow down on a rate-limit reply, recover after successes). Loop thread only;
// the lanes themselves are shared with the other loops.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "mta/common/log_format.hpp"
#include "mta/delivery/engine.hpp"

namespace relayq::mta {

// Known at once for a domain with its own [shaping] entry, a route, or when no entry names MX
// hosts; otherwise the destination's MX hosts are looked up first (the DNS cache keeps them for
// the connections that follow).
bool DeliveryEngine::find_lane(Destination& destination) {
  if (destination.lane) return true;
  if (destination.finding_lane) return false;
  const Route& route = destination.route;
  if (!route.shaping.empty() || !route.mx || !shaper_->has_mx_rules()) {
    destination.lane = shaper_->lane(!route.shaping.empty() ? route.shaping
                                     : route.mx             ? route.name
                                                            : route.key);
    return true;
  }
  destination.finding_lane = true;
  dns::resolve_domain(*resolver_, route.name, route.port, random_,
                      [this, key = route.key, domain = route.name](dns::NextHopResult result) {
                        std::vector<std::string> hosts;
                        for (const auto& hop : result.hops) hosts.push_back(hop.host);
                        const std::string lane = shaper_->mx_lane(hosts);
                        lane_found(key, lane.empty() ? domain : lane);
                      });
  return false;
}

void DeliveryEngine::lane_found(const std::string& key, const std::string& lane) {
  const auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  it->second.finding_lane = false;
  if (stopped_) return;
  it->second.lane = shaper_->lane(lane);
  dispatch(it->second);
}

void DeliveryEngine::wake_later(Destination& destination, std::int64_t wait_us) {
  if (destination.waiting) return;
  destination.waiting = true;
  // Timers count milliseconds: round up, so that the lane allows the job when it fires.
  wakeups_.emplace(static_cast<std::int64_t>(uv_now(loop_.loop())) + (wait_us + 999) / 1000,
                   destination.route.key);
  arm_wake_timer();
}

void DeliveryEngine::arm_wake_timer() {
  if (stopped_ || wakeups_.empty()) return;
  const auto now = static_cast<std::int64_t>(uv_now(loop_.loop()));
  uv_timer_start(
      &wake_timer_,
      [](uv_timer_t* timer) { static_cast<DeliveryEngine*>(timer->data)->wake_due(); },
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, wakeups_.begin()->first - now)), 0);
}

void DeliveryEngine::wake_due() {
  const auto now = static_cast<std::int64_t>(uv_now(loop_.loop()));
  std::vector<std::string> due;
  while (!wakeups_.empty() && wakeups_.begin()->first <= now) {
    due.push_back(std::move(wakeups_.begin()->second));
    wakeups_.erase(wakeups_.begin());
  }
  for (const auto& key : due) {
    const auto it = destinations_.find(key);
    if (it == destinations_.end()) continue;
    it->second.waiting = false;
    dispatch(it->second);
  }
  arm_wake_timer();
}

// A "slow down" reply lowers the lane's rate and connections one step; deliveries raise them
// again, a step per recover_after of them.
void DeliveryEngine::learn_from(Destination& destination, const std::vector<SmtpReply>& replies) {
  if (!destination.lane) return;
  Lane& lane = *destination.lane;
  const SmtpReply* slow_down = nullptr;
  std::size_t delivered = 0;
  for (const auto& reply : replies) {
    if (reply.success()) {
      ++delivered;
      continue;
    }
    if (slow_down == nullptr && settings_->classifier.classify(reply) == ReplyCategory::rate_limit)
      slow_down = &reply;
  }
  if (slow_down != nullptr) {
    if (!lane.slow_down(monotonic_us())) return;
    const ShapingStatus status = lane.status();
    metrics_.delivery_slowdowns().Increment();
    if (status.slowdown_steps == 1) metrics_.destinations_slowed().Increment();
    spdlog::warn(
        "event=slowdown destination={} lane={} level={:.3g} message_rate={:.3g} "
        "max_connections={} reply={}",
        destination.route.key, status.name, status.level, status.message_rate,
        status.max_connections, quoted(slow_down->text));
    return;
  }
  for (std::size_t k = 0; k < delivered; ++k) {
    if (!lane.delivered()) continue;
    const ShapingStatus status = lane.status();
    if (status.slowdown_steps == 0) metrics_.destinations_slowed().Decrement();
    spdlog::info(
        "event=speedup destination={} lane={} level={:.3g} message_rate={:.3g} "
        "max_connections={}",
        destination.route.key, status.name, status.level, status.message_rate,
        status.max_connections);
  }
}

void DeliveryEngine::connection_released(Destination& destination) {
  if (destination.lane) destination.lane->connection_closed();
}

}  // namespace relayq::mta
