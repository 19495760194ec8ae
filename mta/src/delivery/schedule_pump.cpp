// Due schedule entries become active messages: each is loaded and its due recipients become one
// job per route, until its turn ends. Loop thread only (store loads are posted back to it). A
// message is active once at a time: entries that come due meanwhile wait for its turn to end.
#include "mta/delivery/engine.hpp"

#include <algorithm>

#include "dns/domain_name.hpp"
#include "queue/clock.hpp"

namespace relayq::mta {

// Due entries come out of the schedule in time order; a message already being delivered
// keeps its entry until its round ends, so that nothing due is forgotten.
void DeliveryEngine::pump_schedule() {
  if (stopped_) return;
  const std::int64_t now = queue::wall_clock_ms();
  while (active_.size() < settings_->max_active_messages) {
    const auto due = schedule_.pop_due(now, settings_->max_active_messages - active_.size());
    if (due.empty()) break;
    for (const auto& entry : due) {
      if (auto it = active_.find(entry.id); it != active_.end()) {
        ActiveMessage& active = it->second;
        if (active.commit_failures > 0 && !active.committing) {
          commit_round(entry.id);  // its retry: the round's outcome, not a new delivery
        } else {
          active.postponed.push_back(entry);
        }
      } else {
        activate(entry.id);
      }
    }
  }
  arm_schedule_timer();
}

void DeliveryEngine::arm_schedule_timer() {
  const auto next = schedule_.next_due_ms();
  if (!next) {
    uv_timer_stop(&schedule_timer_);
    return;
  }
  // When the active set is full, completions call pump_schedule(); the timer is a fallback.
  std::int64_t delay = std::max<std::int64_t>(0, *next - queue::wall_clock_ms());
  if (active_.size() >= settings_->max_active_messages) delay = std::max<std::int64_t>(delay, 1000);
  uv_timer_start(
      &schedule_timer_,
      [](uv_timer_t* timer) { static_cast<DeliveryEngine*>(timer->data)->pump_schedule(); },
      static_cast<std::uint64_t>(delay), 0);
}

void DeliveryEngine::activate(queue::MessageId id) {
  active_.emplace(id, ActiveMessage{});
  census_.active.fetch_add(1, std::memory_order_relaxed);
  load_then(id, true, &DeliveryEngine::on_loaded);
}

void DeliveryEngine::on_loaded(queue::MessageId id, std::optional<queue::Message> message) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  if (!message || stopped_) {
    end_active(id);  // delivered meanwhile, or deleted by an operator
    return;
  }
  ActiveMessage& active = it->second;
  active.stored = message->envelope;
  active.current = std::move(message->envelope);
  active.body = std::make_shared<const std::string>(std::move(message->body));
  active.loaded = true;
  const std::int64_t now = queue::wall_clock_ms();
  std::unordered_map<std::string, std::pair<Route, Job>> jobs;
  if (!active.current.held) {
    for (std::size_t i = 0; i < active.current.recipients.size(); ++i) {
      const auto& recipient = active.current.recipients[i];
      if (recipient.state != queue::RecipientState::pending || recipient.next_attempt_ms > now)
        continue;
      Route route = settings_->router.route_for(dns::domain_of_mailbox(recipient.address));
      auto& [job_route, job] = jobs[route.key];
      job_route = std::move(route);
      job.id = id;
      job.recipients.push_back(static_cast<std::uint16_t>(i));
    }
  }
  if (jobs.empty()) {
    finish_round(id);
    return;
  }
  active.jobs_outstanding = jobs.size();
  for (auto& [key, route_and_job] : jobs)
    enqueue(route_and_job.first, std::move(route_and_job.second));
}

// Ends a message's turn on this loop: what came due meanwhile goes back on the schedule, and
// operator changes that waited for the turn start now.
void DeliveryEngine::end_active(queue::MessageId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::vector<queue::DueEntry> postponed = std::move(it->second.postponed);
  std::vector<AdminOp> admin_ops = std::move(it->second.admin_ops);
  active_.erase(it);
  census_.active.fetch_sub(1, std::memory_order_relaxed);
  for (const auto& entry : postponed) schedule_.add(entry);
  for (auto& op : admin_ops) admin(id, op.action, std::move(op.done));
  pump_schedule();
}

}  // namespace relayq::mta
