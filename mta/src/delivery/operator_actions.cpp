// Operators' changes (hold, release, remove, retry) to the messages this engine owns. Loop thread
// only (store loads and commits are posted back to it). A change never races a delivery round:
// it waits for the round to end and applies to the state the store holds.
#include "mta/delivery/engine.hpp"

#include <spdlog/spdlog.h>

#include <tuple>

namespace relayq::mta {

namespace {

// Applies one operator change to an envelope; no_change when it is already so.
AdminOutcome apply_admin(queue::Envelope& envelope, DeliveryEngine::AdminAction action) {
  using Action = DeliveryEngine::AdminAction;
  switch (action) {
    case Action::hold:
      if (envelope.held) return AdminOutcome::no_change;
      envelope.held = true;
      return AdminOutcome::done;
    case Action::release:
      if (!envelope.held) return AdminOutcome::no_change;
      envelope.held = false;
      return AdminOutcome::done;
    case Action::retry:
      for (auto& recipient : envelope.recipients)
        if (recipient.state == queue::RecipientState::pending) recipient.next_attempt_ms = 0;
      return AdminOutcome::done;
    case Action::remove:
      // The store deletes a message once no recipient is pending; a removed message is
      // never written in this state, so no DSN and no trace remain.
      for (auto& recipient : envelope.recipients)
        if (recipient.state == queue::RecipientState::pending)
          recipient.state = queue::RecipientState::bounced;
      return AdminOutcome::done;
  }
  return AdminOutcome::failed;
}

}  // namespace

void DeliveryEngine::admin(queue::MessageId id, AdminAction action, QueueAdmin::Done done) {
  if (stopped_) {
    done({AdminOutcome::failed, "relayq is stopping"});
    return;
  }
  // "Retry now" means a connection attempt now: a destination that is backing off would
  // answer the retried message with its last failure, without trying (a mailbox server that
  // is back, say).
  if (action == AdminAction::retry) {
    for (auto& [key, destination] : destinations_) destination.dead_until_ms = 0;
  }
  auto [it, fresh] = active_.try_emplace(id);
  it->second.admin_ops.push_back({action, std::move(done)});
  if (!fresh) return;  // a delivery round (or another change) is in progress: after it ends
  census_.active.fetch_add(1, std::memory_order_relaxed);
  load_then(id, false, &DeliveryEngine::on_admin_loaded);
}

void DeliveryEngine::on_admin_loaded(queue::MessageId id, std::optional<queue::Message> message) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::vector<AdminOp> ops = std::move(it->second.admin_ops);
  std::vector<AdminOutcome> outcomes;
  queue::Envelope after;
  if (!message) {
    outcomes.assign(ops.size(), AdminOutcome::not_found);
  } else {
    after = message->envelope;
    for (const auto& op : ops) outcomes.push_back(apply_admin(after, op.action));
  }
  if (!message || after == message->envelope || stopped_) {
    admin_finished(id, std::move(ops), std::move(outcomes), {}, after);
    return;
  }
  net::LoopThread* loop = &loop_;
  auto shared = std::make_shared<
      std::tuple<std::vector<AdminOp>, std::vector<AdminOutcome>, queue::Envelope>>(
      std::move(ops), std::move(outcomes), after);
  store_.commit(message->envelope, after, std::nullopt,
                [this, loop, id, shared](const queue::StoreResult& result) {
                  loop->post([this, id, shared, result] {
                    auto& [ops, outcomes, after] = *shared;
                    admin_finished(id, std::move(ops), std::move(outcomes), result, after);
                  });
                });
}

void DeliveryEngine::admin_finished(queue::MessageId id, std::vector<AdminOp> ops,
                                    std::vector<AdminOutcome> outcomes,
                                    const queue::StoreResult& result,
                                    const queue::Envelope& after) {
  if (result.ok()) {
    // Released or retried recipients go back on the schedule as a restart would find them.
    for (const auto& entry : queue::due_entries(after)) schedule_.add(entry);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (outcomes[i] != AdminOutcome::done) continue;
      if (ops[i].action == AdminAction::hold) census_.held.fetch_add(1, std::memory_order_relaxed);
      if (ops[i].action == AdminAction::release)
        census_.held.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!outcomes.empty() && outcomes.front() != AdminOutcome::not_found && !after.has_pending()) {
      census_.messages.fetch_sub(1, std::memory_order_relaxed);
      if (after.held) census_.held.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const AdminOutcome outcome = result.ok() ? outcomes[i] : AdminOutcome::failed;
    spdlog::info("event=admin id={} action={} outcome={}", queue::format_id(id),
                 static_cast<int>(ops[i].action), static_cast<int>(outcome));
    ops[i].done({outcome, result.ok() ? std::string() : result.detail});
  }
  end_active(id);  // changes that arrived meanwhile start from the state just stored
}

}  // namespace relayq::mta
