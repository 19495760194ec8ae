// Outbound delivery on one loop: schedule -> load -> destinations -> connections -> replies ->
// commit (with a DSN when something bounced) -> schedule again what was deferred.
#include "mta/delivery/engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "mta/common/log_format.hpp"
#include "queue/clock.hpp"
#include "queue/dsn.hpp"

namespace relayq::mta {

namespace {

std::string_view reply_class(const SmtpReply& reply) {
  if (reply.code == 0) return "error";
  if (reply.code < 400) return "2xx";
  return reply.code < 500 ? "4xx" : "5xx";
}

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

// A DNS verdict as the reply a recipient records: permanent ones bounce, others defer.
SmtpReply dns_reply(const dns::NextHopResult& result) {
  const int code = result.status == dns::NextHopStatus::bounce ? 550 : 451;
  return {code, result.enhanced_code + " " + result.reason};
}

// A loop's share of a limit for all loops: rounded up, so that the limit is never below one.
std::uint32_t share_of(std::uint32_t total, unsigned loops) {
  return std::max<std::uint32_t>(1, (total + loops - 1) / loops);
}

}  // namespace

OutboundEngine::OutboundEngine(net::LoopThread& loop, queue::Store& store, metrics::Metrics& metrics,
                               std::shared_ptr<const DeliverySettings> settings,
                               std::shared_ptr<dns::Cache> dns_cache, unsigned loops,
                               std::function<void(queue::MessageId)> route_message,
                               QueueCensus& census)
    : loop_(loop),
      store_(store),
      metrics_(metrics),
      settings_(std::move(settings)),
      dns_cache_(std::move(dns_cache)),
      loops_(loops),
      connection_limit_(share_of(settings_->max_connections_per_destination, loops)),
      route_message_(std::move(route_message)),
      census_(census),
      random_(std::random_device{}()) {}

OutboundEngine::~OutboundEngine() = default;

void OutboundEngine::add_due(const std::vector<queue::DueEntry>& entries) {
  if (stopped_) return;
  for (const auto& entry : entries) schedule_.add(entry);
  if (started_) pump_schedule();
}

void OutboundEngine::start() {
  resolver_ = std::make_unique<dns::Resolver>(loop_.loop(), settings_->resolver, dns_cache_);
  uv_timer_init(loop_.loop(), &schedule_timer_);
  schedule_timer_.data = this;
  started_ = true;
  pump_schedule();
}

void OutboundEngine::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&schedule_timer_), nullptr);
  for (auto& [pointer, connection] : connections_) connection->shut_down();
  resolver_->shutdown();
}

void OutboundEngine::admin(queue::MessageId id, AdminAction action, QueueAdmin::Done done) {
  if (stopped_) {
    done({AdminOutcome::failed, "relayq is stopping"});
    return;
  }
  auto [it, fresh] = active_.try_emplace(id);
  it->second.admin_ops.push_back({action, std::move(done)});
  if (!fresh) return;  // a delivery round (or another change) is in progress: after it ends
  census_.active.fetch_add(1, std::memory_order_relaxed);
  net::LoopThread* loop = &loop_;
  store_.load(id, false, [this, loop, id](std::optional<queue::Message> message) {
    auto shared = std::make_shared<std::optional<queue::Message>>(std::move(message));
    loop->post([this, id, shared] { on_admin_loaded(id, std::move(*shared)); });
  });
}

namespace {

// Applies one operator change to an envelope; no_change when it is already so.
AdminOutcome apply_admin(queue::Envelope& envelope, OutboundEngine::AdminAction action) {
  using Action = OutboundEngine::AdminAction;
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

void OutboundEngine::on_admin_loaded(queue::MessageId id, std::optional<queue::Message> message) {
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

void OutboundEngine::admin_finished(queue::MessageId id, std::vector<AdminOp> ops,
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

void OutboundEngine::update_settings(std::shared_ptr<const DeliverySettings> settings) {
  if (stopped_) return;
  if (settings->resolver.servers != settings_->resolver.servers) {
    // Lookups in flight complete as temporary failures and are retried on the new servers.
    resolver_->shutdown();
    resolver_ = std::make_unique<dns::Resolver>(loop_.loop(), settings->resolver, dns_cache_);
  }
  settings_ = std::move(settings);
  connection_limit_ = share_of(settings_->max_connections_per_destination, loops_);
}

void OutboundEngine::deliver_now(queue::MessageId id) {
  if (stopped_) return;
  if (auto it = active_.find(id); it != active_.end()) {
    it->second.postponed.push_back({queue::wall_clock_ms(), id, 0});
    return;
  }
  activate(id);
}

// Due entries come out of the schedule in time order; a message already being delivered
// keeps its entry until its round ends, so that nothing due is forgotten.
void OutboundEngine::pump_schedule() {
  if (stopped_) return;
  const std::int64_t now = queue::wall_clock_ms();
  while (active_.size() < settings_->max_active_messages) {
    const auto due = schedule_.pop_due(now, settings_->max_active_messages - active_.size());
    if (due.empty()) break;
    for (const auto& entry : due) {
      if (auto it = active_.find(entry.id); it != active_.end()) {
        it->second.postponed.push_back(entry);
      } else {
        activate(entry.id);
      }
    }
  }
  arm_schedule_timer();
}

void OutboundEngine::arm_schedule_timer() {
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
      [](uv_timer_t* timer) { static_cast<OutboundEngine*>(timer->data)->pump_schedule(); },
      static_cast<std::uint64_t>(delay), 0);
}

void OutboundEngine::activate(queue::MessageId id) {
  active_.emplace(id, ActiveMessage{});
  census_.active.fetch_add(1, std::memory_order_relaxed);
  net::LoopThread* loop = &loop_;
  store_.load(id, true, [this, loop, id](std::optional<queue::Message> message) {
    auto shared = std::make_shared<std::optional<queue::Message>>(std::move(message));
    loop->post([this, id, shared] { on_loaded(id, std::move(*shared)); });
  });
}

void OutboundEngine::on_loaded(queue::MessageId id, std::optional<queue::Message> message) {
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
      Route route = settings_->router.route_for(recipient_domain(recipient.address));
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

void OutboundEngine::enqueue(const Route& route, Job job) {
  Destination& destination = destinations_[route.key];
  destination.route = route;
  if (queue::wall_clock_ms() < destination.dead_until_ms) {
    // A destination that keeps failing is not hammered by every message: its jobs wait for
    // the back-off to end without a connection attempt each.
    record(job,
           std::vector<SmtpReply>(
               job.recipients.size(),
               {0, "destination backed off after failures: " + destination.dead_reason.text}),
           {queue::wall_clock_ms(), "", "", std::uniform_real_distribution<double>(0, 1)(random_)});
    return;
  }
  destination.queue.push_back(std::move(job));
  dispatch(destination);
}

void OutboundEngine::dispatch(Destination& destination) {
  for (auto* connection : destination.connections) {
    if (destination.queue.empty()) return;
    if (connection->idle()) give_job(*connection, destination);
  }
  // Jobs beyond what connections in the making will take need more connections.
  std::size_t wanted = destination.queue.size() > destination.resolving
                           ? destination.queue.size() - destination.resolving
                           : 0;
  while (wanted-- > 0 &&
         destination.connections.size() + destination.resolving < connection_limit_) {
    open_connection(destination);
  }
}

void OutboundEngine::open_connection(Destination& destination) {
  ++destination.resolving;
  const Route route = destination.route;
  auto done = [this, key = route.key](dns::NextHopResult result) { on_resolved(key, result); };
  if (route.mx) {
    dns::resolve_domain(*resolver_, route.name, route.port, random_, std::move(done));
  } else {
    dns::resolve_host(*resolver_, route.name, route.port, std::move(done));
  }
}

void OutboundEngine::on_resolved(const std::string& key, const dns::NextHopResult& result) {
  auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  Destination& destination = it->second;
  --destination.resolving;
  if (stopped_) return;
  if (result.status != dns::NextHopStatus::ok) {
    fail_queued(destination, dns_reply(result), "");
    return;
  }
  if (destination.queue.empty()) return;
  auto connection = std::make_unique<OutboundConnection>(loop_.loop(), *this, key, result.hops,
                                                         settings_->client, settings_->timeouts);
  OutboundConnection* pointer = connection.get();
  destination.connections.push_back(pointer);
  connections_.emplace(pointer, std::move(connection));
  metrics_.outbound_connections().Increment();
  pointer->start();
}

void OutboundEngine::fail_queued(Destination& destination, const SmtpReply& reply,
                                 const std::string& nexthop) {
  std::deque<Job> jobs;
  jobs.swap(destination.queue);
  const AttemptContext context{queue::wall_clock_ms(), nexthop, "",
                               std::uniform_real_distribution<double>(0, 1)(random_)};
  for (const auto& job : jobs)
    record(job, std::vector<SmtpReply>(job.recipients.size(), reply), context);
}

void OutboundEngine::give_job(OutboundConnection& connection, Destination& destination) {
  while (!destination.queue.empty()) {
    Job job = std::move(destination.queue.front());
    destination.queue.pop_front();
    auto it = active_.find(job.id);
    if (it == active_.end()) continue;
    job.started_ns = uv_hrtime();
    OutboundMessage message = outbound_message(it->second, job);
    connection.send(std::move(job), std::move(message));
    return;
  }
  connection.idle_until_closed();
}

OutboundMessage OutboundEngine::outbound_message(const ActiveMessage& message,
                                                 const Job& job) const {
  OutboundMessage out;
  out.sender = message.current.sender;
  for (auto index : job.recipients)
    out.recipients.push_back(message.current.recipients[index].address);
  out.body = message.body;
  out.eight_bit_mime = message.current.eight_bit_mime;
  out.smtputf8 = message.current.smtputf8;
  return out;
}

const queue::RetryPolicy& OutboundEngine::policy_for(const queue::Envelope& envelope,
                                                     std::uint16_t index) const {
  return settings_->retry.for_domain(recipient_domain(envelope.recipients[index].address));
}

void OutboundEngine::connection_ready(OutboundConnection& connection) {
  auto it = destinations_.find(connection.destination());
  if (it == destinations_.end() || stopped_) {
    connection.quit();
    return;
  }
  it->second.failures = 0;  // one success clears a destination's back-off
  it->second.dead_until_ms = 0;
  give_job(connection, it->second);
}

void OutboundEngine::transaction_done(OutboundConnection& connection, Job job,
                                      const TransactionResult& result) {
  metrics_.delivery_duration().Observe(static_cast<double>(uv_hrtime() - job.started_ns) / 1e9);
  const AttemptContext context{queue::wall_clock_ms(), connection.nexthop(), connection.remote_host(),
                               std::uniform_real_distribution<double>(0, 1)(random_)};
  record(job, result.recipients, context);
  auto it = destinations_.find(connection.destination());
  if (stopped_ || it == destinations_.end()) {
    connection.quit();
    return;
  }
  if (connection.idle()) give_job(connection, it->second);
}

void OutboundEngine::connection_failed(OutboundConnection& connection, const SmtpReply& reason) {
  auto it = destinations_.find(connection.destination());
  if (it == destinations_.end() || stopped_) return;
  Destination& destination = it->second;
  ++destination.failures;
  const auto& policy =
      settings_->retry.for_domain(destination.route.mx ? destination.route.name : std::string());
  const double unit = std::uniform_real_distribution<double>(0, 1)(random_);
  destination.dead_until_ms =
      queue::wall_clock_ms() + queue::retry_delay(policy, destination.failures, unit).count();
  destination.dead_reason = reason;
  spdlog::warn("event=destination_failed destination={} failures={} reason={}",
               destination.route.key, destination.failures, quoted(reason.text));
  fail_queued(destination, reason, "");
}

void OutboundEngine::connection_closed(OutboundConnection& connection) {
  metrics_.outbound_connections().Decrement();
  const std::string key = connection.destination();
  connections_.erase(&connection);  // destroys it
  auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  Destination& destination = it->second;
  std::erase(destination.connections, &connection);
  if (stopped_) return;
  if (!destination.queue.empty()) {
    dispatch(destination);
  } else if (destination.connections.empty() && destination.resolving == 0 &&
             destination.dead_until_ms <= queue::wall_clock_ms()) {
    destinations_.erase(it);  // nothing left to remember about it
  }
}

// Applies each recipient's reply to its message; the last job of a message ends its round.
void OutboundEngine::record(const Job& job, const std::vector<SmtpReply>& replies,
                            const AttemptContext& context) {
  auto it = active_.find(job.id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  auto& envelope = active.current;
  for (std::size_t k = 0; k < job.recipients.size() && k < replies.size(); ++k) {
    const std::uint16_t index = job.recipients[k];
    auto& recipient = envelope.recipients[index];
    const SmtpReply& reply = replies[k];
    const auto& policy = policy_for(envelope, index);
    const Fate fate = apply_reply(recipient, reply, policy, envelope.received_ms, context);
    metrics_.outbound_replies(reply_class(reply)).Increment();
    switch (fate) {
      case Fate::delivered:
        metrics_.recipients_delivered().Increment();
        metrics_.time_in_queue().Observe(
            static_cast<double>(context.now_ms - envelope.received_ms) / 1000.0);
        break;
      case Fate::deferred:
        metrics_.recipients_deferred().Increment();
        active.deferred.push_back({index, reply, context.remote_host});
        break;
      case Fate::bounced:
        metrics_.recipients_bounced().Increment();
        active.dsn.push_back(dsn_entry(recipient, fate, reply, context, 0));
        break;
    }
    spdlog::info("event=delivery id={} rcpt={} nexthop={} status={} attempts={} reply={}",
                 queue::format_id(job.id), quoted(recipient.address),
                 context.nexthop.empty() ? "none" : context.nexthop, fate_name(fate),
                 recipient.attempts, quoted(reply.text));
  }
  if (--active.jobs_outstanding == 0) finish_round(job.id);
}

// The round of a message is over: add a "delayed" notice when it is due, build the DSN, and
// commit the new state (the message disappears from the store when nothing is pending).
void OutboundEngine::finish_round(queue::MessageId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  auto& envelope = active.current;
  const std::int64_t now = queue::wall_clock_ms();
  if (!active.deferred.empty() && !envelope.sender.empty() && !envelope.delay_warned) {
    const auto& policy = policy_for(envelope, active.deferred.front().index);
    if (policy.delay_warning.count() > 0 &&
        now - envelope.received_ms >= policy.delay_warning.count()) {
      for (const auto& deferral : active.deferred) {
        const AttemptContext context{now, "", deferral.remote_host, 0};
        active.dsn.push_back(dsn_entry(envelope.recipients[deferral.index], Fate::deferred,
                                       deferral.reply, context,
                                       envelope.received_ms + policy.max_age.count()));
      }
      envelope.delay_warned = true;
    }
  }
  std::optional<queue::Message> dsn;
  std::optional<queue::MessageId> dsn_id;
  if (!active.dsn.empty()) {
    if (envelope.sender.empty()) {
      spdlog::warn("event=dsn_dropped id={} reason=\"null sender: no notice for a notice\"",
                   queue::format_id(id));
    } else {
      queue::DsnRequest request{settings_->hostname, &envelope, queue::header_section(*active.body),
                                active.dsn};
      dsn_id = store_.next_id();
      dsn = queue::build_dsn(request, *dsn_id, now);
      spdlog::info("event=dsn id={} original={} to={} recipients={}", queue::format_id(*dsn_id),
                   queue::format_id(id), quoted(envelope.sender), active.dsn.size());
    }
  }
  if (!active.loaded || active.current == active.stored) {
    on_committed(id, {}, std::nullopt);  // nothing changed: nothing to write
    return;
  }
  net::LoopThread* loop = &loop_;
  store_.commit(active.stored, envelope, std::move(dsn),
                [this, loop, id, dsn_id](const queue::StoreResult& result) {
                  loop->post([this, id, dsn_id, result] { on_committed(id, result, dsn_id); });
                });
}

void OutboundEngine::on_committed(queue::MessageId id, const queue::StoreResult& result,
                                  std::optional<queue::MessageId> dsn_id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveMessage& active = it->second;
  if (!result.ok()) {
    // The store still holds the previous state; try the message again later from there.
    spdlog::error("event=commit_failed id={} error={}", queue::format_id(id),
                  quoted(result.detail));
    schedule_.add({queue::wall_clock_ms() + 60'000, id, 0});
  } else {
    for (const auto& deferral : active.deferred)
      schedule_.add(
          {active.current.recipients[deferral.index].next_attempt_ms, id, deferral.index});
    if (dsn_id) {
      census_.messages.fetch_add(1, std::memory_order_relaxed);
      route_message_(*dsn_id);
    }
    if (!active.current.has_pending()) census_.messages.fetch_sub(1, std::memory_order_relaxed);
  }
  end_active(id);
}

// Ends a message's turn on this loop: what came due meanwhile goes back on the schedule, and
// operator changes that waited for the turn start now.
void OutboundEngine::end_active(queue::MessageId id) {
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
