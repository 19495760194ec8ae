// A message's delivery round: replies become fates (metrics, a log line), then a delay notice, a
// DSN and the commit of the new state. Loop thread only (store commits are posted back to it). A
// message's state is committed to the store before its deferred recipients are rescheduled, and
// a round ends only when its commit has landed.
#include "mta/delivery/engine.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "dns/domain_name.hpp"
#include "mta/common/log_format.hpp"
#include "queue/clock.hpp"
#include "queue/dsn.hpp"

namespace relayq::mta {

namespace {

std::string_view fate_name(Fate fate) {
  switch (fate) {
    case Fate::delivered:
      return "sent";
    case Fate::deferred:
      return "deferred";
    case Fate::bounced:
      return "bounced";
  }
  return "unknown";
}

}  // namespace

queue::RetryRule DeliveryEngine::retry_rule_for(const queue::Envelope& envelope,
                                                std::uint16_t index) const {
  return settings_->retry.rule_for(dns::domain_of_mailbox(envelope.recipients[index].address));
}

// Applies each recipient's reply to its message; the last job of a message ends its round.
void DeliveryEngine::record(const Job& job, const std::vector<SmtpReply>& replies,
                            const AttemptContext& context) {
  auto it = active_.find(job.id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  auto& envelope = active.current;
  for (std::size_t k = 0; k < job.recipients.size() && k < replies.size(); ++k) {
    const std::uint16_t index = job.recipients[k];
    auto& recipient = envelope.recipients[index];
    const SmtpReply& reply = replies[k];
    const ReplyCategory category =
        reply.success() ? ReplyCategory::other : settings_->classifier.classify(reply);
    const Fate fate = apply_reply(recipient, reply, category, retry_rule_for(envelope, index),
                                  envelope.received_ms, context);
    metrics_.outbound_replies(metrics::reply_class_of(reply.code)).Increment();
    switch (fate) {
      case Fate::delivered:
        metrics_.recipients_delivered().Increment();
        metrics_.time_in_queue().Observe(
            static_cast<double>(context.now_ms - envelope.received_ms) / 1000.0);
        break;
      case Fate::deferred:
        metrics_.recipients_deferred().Increment();
        failure_counter(category, metrics::FailureResult::deferred).Increment();
        active.deferred.push_back({index, reply, context.remote_host});
        break;
      case Fate::bounced:
        metrics_.recipients_bounced().Increment();
        failure_counter(category, metrics::FailureResult::bounced).Increment();
        active.dsn.push_back(dsn_entry(recipient, fate, reply, context, 0));
        break;
    }
    spdlog::info("event=delivery id={} rcpt={} nexthop={} status={} attempts={}{} reply={}",
                 queue::format_id(job.id), quoted(recipient.address),
                 context.nexthop.empty() ? "none" : context.nexthop, fate_name(fate),
                 recipient.attempts,
                 fate == Fate::delivered ? "" : " category=" + std::string(to_string(category)),
                 quoted(reply.text));
  }
  if (--active.jobs_outstanding == 0) finish_round(job.id);
}

// The round of a message is over: add a "delayed" notice when it is due, build the DSN, and
// commit the new state (the message disappears from the store when nothing is pending).
void DeliveryEngine::finish_round(queue::MessageId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  auto& envelope = active.current;
  const std::int64_t now = queue::wall_clock_ms();
  if (!active.deferred.empty() && !envelope.sender.empty() && !envelope.delay_warned) {
    const auto& policy = retry_rule_for(envelope, active.deferred.front().index).policy;
    if (policy.delay_warning.count() > 0 &&
        now - envelope.received_ms >= policy.delay_warning.count()) {
      for (const auto& deferral : active.deferred) {
        const AttemptContext context{now, "", deferral.remote_host, 0, ""};
        active.dsn.push_back(dsn_entry(envelope.recipients[deferral.index], Fate::deferred,
                                       deferral.reply, context,
                                       envelope.received_ms + policy.max_age.count()));
      }
      envelope.delay_warned = true;
    }
  }
  if (!active.dsn.empty()) {
    if (envelope.sender.empty()) {
      spdlog::warn("event=dsn_dropped id={} reason=\"null sender: no notice for a notice\"",
                   queue::format_id(id));
    } else {
      queue::DsnRequest request{settings_->hostname, &envelope, queue::header_section(*active.body),
                                active.dsn};
      active.dsn_id = store_.next_id();
      active.dsn_message = queue::build_dsn(request, *active.dsn_id, now);
      spdlog::info("event=dsn id={} original={} to={} recipients={}",
                   queue::format_id(*active.dsn_id), queue::format_id(id), quoted(envelope.sender),
                   active.dsn.size());
    }
  }
  commit_round(id);
}

// Writes the round's outcome; also what a round whose commit failed tries again, unchanged.
void DeliveryEngine::commit_round(queue::MessageId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  if (!active.loaded || active.current == active.stored) {
    on_committed(id, {}, std::nullopt);  // nothing changed: nothing to write
    return;
  }
  active.committing = true;
  net::LoopThread* loop = &loop_;
  const std::optional<queue::MessageId> dsn_id = active.dsn_id;
  store_.commit(active.stored, active.current, active.dsn_message,
                [this, loop, id, dsn_id](const queue::StoreResult& result) {
                  loop->post([this, id, dsn_id, result] { on_committed(id, result, dsn_id); });
                });
}

// Whether a round delivered or bounced a recipient (or made a DSN): what must not happen twice.
bool DeliveryEngine::round_changed_fates(const ActiveMessage& active) {
  if (active.dsn_message) return true;
  for (std::size_t i = 0; i < active.current.recipients.size(); ++i) {
    if (active.current.recipients[i].state != active.stored.recipients[i].state) return true;
  }
  return false;
}

void DeliveryEngine::on_committed(queue::MessageId id, const queue::StoreResult& result,
                                  std::optional<queue::MessageId> dsn_id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  active.committing = false;
  if (!result.ok() && !round_changed_fates(active)) {
    // Only deferrals, which the next attempt repeats anyway: the round ends, and the message
    // is tried again from the store's state when its recipients come due.
    spdlog::error("event=commit_failed id={} error={} kept=none", queue::format_id(id),
                  quoted(result.detail));
    for (const auto& deferral : active.deferred)
      schedule_.add(
          {active.current.recipients[deferral.index].next_attempt_ms, id, deferral.index});
    end_active(id);
    return;
  }
  if (!result.ok()) {
    // The store still holds the previous state, but the next hops have what they accepted:
    // the round stays active and only its commit is tried again (after 1 s, doubling to a
    // minute), so nothing is delivered twice while the process lives.
    const std::int64_t delay_ms = std::min<std::int64_t>(
        60'000, std::int64_t{1000} << std::min<std::uint32_t>(active.commit_failures, 6));
    ++active.commit_failures;
    spdlog::error("event=commit_failed id={} error={} kept=fates retry_in_ms={} attempt={}",
                  queue::format_id(id), quoted(result.detail), delay_ms, active.commit_failures);
    schedule_.add({queue::wall_clock_ms() + delay_ms, id, 0});
    return;
  }
  for (const auto& deferral : active.deferred)
    schedule_.add({active.current.recipients[deferral.index].next_attempt_ms, id, deferral.index});
  if (dsn_id) {
    census_.messages.fetch_add(1, std::memory_order_relaxed);
    route_message_(*dsn_id);
  }
  if (!active.current.has_pending()) census_.messages.fetch_sub(1, std::memory_order_relaxed);
  end_active(id);
}

}  // namespace relayq::mta
