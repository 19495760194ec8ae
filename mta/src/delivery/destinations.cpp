// Destinations and their connection pools: jobs queue per route and go to connections opened as
// the destination's lane allows (lanes.cpp). Loop thread only (DNS answers and connection events
// arrive on it). A failing destination backs off: its jobs are deferred without a connection
// attempt.
#include "mta/delivery/engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "mta/common/log_format.hpp"
#include "queue/clock.hpp"

namespace relayq::mta {

namespace {

// A DNS verdict as the reply a recipient records: permanent ones bounce, others defer.
SmtpReply dns_reply(const dns::NextHopResult& result) {
  const int code = result.status == dns::NextHopStatus::bounce ? 550 : 451;
  return {code, result.enhanced_code + " " + result.reason};
}

}  // namespace

void DeliveryEngine::enqueue(const Route& route, Job job) {
  Destination& destination = destinations_[route.key];
  destination.route = route;
  if (queue::wall_clock_ms() < destination.dead_until_ms) {
    // A destination that keeps failing is not hammered by every message: its jobs wait for
    // the back-off to end without a connection attempt each.
    record(job,
           std::vector<SmtpReply>(
               job.recipients.size(),
               {0, "destination backed off after failures: " + destination.dead_reason.text}),
           {queue::wall_clock_ms(), "", "", std::uniform_real_distribution<double>(0, 1)(random_),
            ""});
    return;
  }
  destination.queue.push_back(std::move(job));
  dispatch(destination);
}

void DeliveryEngine::dispatch(Destination& destination) {
  if (!find_lane(destination)) return;  // dispatch() again once it is known
  for (auto* connection : destination.connections) {
    if (destination.queue.empty() || destination.waiting) return;
    if (connection->idle()) give_job(*connection, destination);
  }
  // A destination at its message rate waits with the connections it has.
  if (destination.waiting) return;
  // Jobs beyond what connections in the making will take need more connections, as many as
  // the lane allows, and no more than its rate lets send now: a destination shaped to a few
  // messages a minute gets one connection at a time, not a burst of idle ones.
  std::size_t wanted = destination.queue.size() > destination.resolving
                           ? destination.queue.size() - destination.resolving
                           : 0;
  const std::int64_t now = monotonic_us();
  const std::size_t allowed = destination.lane->messages_available(now);
  if (wanted > 0 && allowed == 0 && destination.resolving == 0 && destination.connections.empty()) {
    wake_later(destination, destination.lane->message_wait(now));
    return;
  }
  wanted = std::min(wanted, allowed);
  while (wanted-- > 0) {
    const std::int64_t wait = destination.lane->open_connection(
        now, destination.connections.size() + destination.resolving);
    if (wait > 0) wake_later(destination, wait);
    if (wait != 0) return;
    open_connection(destination);
  }
}

void DeliveryEngine::open_connection(Destination& destination) {
  ++destination.resolving;
  const Route route = destination.route;
  auto done = [this, key = route.key](dns::NextHopResult result) { on_resolved(key, result); };
  if (!route.unix_path.empty()) {
    dns::NextHopResult local;  // nothing to resolve: the connection has its path
    local.status = dns::NextHopStatus::ok;
    done(std::move(local));
  } else if (route.mx) {
    dns::resolve_domain(*resolver_, route.name, route.port, random_, std::move(done));
  } else {
    dns::resolve_host(*resolver_, route.name, route.port, std::move(done));
  }
}

void DeliveryEngine::on_resolved(const std::string& key, const dns::NextHopResult& result) {
  auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  Destination& destination = it->second;
  --destination.resolving;
  if (stopped_ || result.status != dns::NextHopStatus::ok || destination.queue.empty()) {
    connection_released(destination);  // the connection reserved in the lane never opened
    if (!stopped_ && result.status != dns::NextHopStatus::ok)
      fail_queued(destination, dns_reply(result), "");
    return;
  }
  auto connection = std::make_unique<OutboundConnection>(
      loop_.loop(), *this, key, result.hops, destination.route.unix_path,
      settings_->client(destination.route.lmtp, destination.route.tls), settings_->timeouts,
      tls_for(destination.route));
  OutboundConnection* pointer = connection.get();
  destination.connections.push_back(pointer);
  connections_.emplace(pointer, std::move(connection));
  metrics_.outbound_connections().Increment();
  pointer->start();
}

OutboundTls DeliveryEngine::tls_for(const Route& route) {
  OutboundTls tls;
  if (route.tls == TlsPolicy::off) return tls;
  if (const auto it = settings_->tls_contexts.find(route.tls_ca);
      it != settings_->tls_contexts.end())
    tls.context = it->second;
  tls.sessions = &tls_sessions_;
  if (route.tls == TlsPolicy::opportunistic)
    tls.plaintext_fallback = settings_->client(route.lmtp, TlsPolicy::off);
  return tls;
}

void DeliveryEngine::tls_handshake_done(OutboundConnection&, bool ok) {
  metrics_
      .tls_handshakes(metrics::Direction::outbound,
                      ok ? metrics::TlsResult::ok : metrics::TlsResult::failed)
      .Increment();
}

// The next job goes to `connection` when the lane allows: a connection that has carried its
// share of messages, or that a slow-down made one too many, closes instead; at the message rate
// the destination waits for a wake-up.
void DeliveryEngine::give_job(OutboundConnection& connection, Destination& destination) {
  Lane& lane = *destination.lane;
  if (lane.should_close(connection.transactions(),
                        destination.connections.size() + destination.resolving)) {
    connection.quit();
    return;
  }
  while (!destination.queue.empty()) {
    if (!active_.contains(destination.queue.front().id)) {
      destination.queue.pop_front();
      continue;
    }
    if (const auto wait = lane.take_message(monotonic_us()); wait > 0) {
      wake_later(destination, wait);
      break;
    }
    Job job = std::move(destination.queue.front());
    destination.queue.pop_front();
    job.started_ns = uv_hrtime();
    OutboundMessage message = outbound_message(active_.at(job.id), job);
    connection.send(std::move(job), std::move(message));
    return;
  }
  connection.idle_until_closed();
}

OutboundMessage DeliveryEngine::outbound_message(const ActiveMessage& message,
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

void DeliveryEngine::fail_queued(Destination& destination, const SmtpReply& reply,
                                 const std::string& nexthop) {
  std::deque<Job> jobs;
  jobs.swap(destination.queue);
  const AttemptContext context{queue::wall_clock_ms(), nexthop, "",
                               std::uniform_real_distribution<double>(0, 1)(random_), ""};
  for (const auto& job : jobs)
    record(job, std::vector<SmtpReply>(job.recipients.size(), reply), context);
}

void DeliveryEngine::connection_ready(OutboundConnection& connection) {
  auto it = destinations_.find(connection.destination());
  if (it == destinations_.end() || stopped_) {
    connection.quit();
    return;
  }
  it->second.failures = 0;  // one success clears a destination's back-off
  it->second.dead_until_ms = 0;
  give_job(connection, it->second);
}

void DeliveryEngine::transaction_done(OutboundConnection& connection, Job job,
                                      const TransactionResult& result) {
  metrics_.delivery_duration().Observe(static_cast<double>(uv_hrtime() - job.started_ns) / 1e9);
  const AttemptContext context{
      queue::wall_clock_ms(), connection.nexthop(), connection.remote_host(),
      std::uniform_real_distribution<double>(0, 1)(random_), connection.tls_summary()};
  record(job, result.recipients, context);
  auto it = destinations_.find(connection.destination());
  if (stopped_ || it == destinations_.end()) {
    connection.quit();
    return;
  }
  learn_from(it->second, result.recipients);
  if (!connection.idle()) return;
  if (it->second.waiting) {
    connection.idle_until_closed();  // the wake-up gives it the next job
  } else {
    give_job(connection, it->second);
  }
}

void DeliveryEngine::connection_failed(OutboundConnection& connection, const SmtpReply& reason) {
  auto it = destinations_.find(connection.destination());
  if (it == destinations_.end() || stopped_) return;
  Destination& destination = it->second;
  learn_from(destination, {reason});
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

void DeliveryEngine::connection_closed(OutboundConnection& connection) {
  metrics_.outbound_connections().Decrement();
  const std::string key = connection.destination();
  connections_.erase(&connection);  // destroys it
  auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  Destination& destination = it->second;
  std::erase(destination.connections, &connection);
  connection_released(destination);
  if (stopped_) return;
  if (!destination.queue.empty()) {
    dispatch(destination);
  } else if (destination.connections.empty() && destination.resolving == 0 &&
             !destination.finding_lane && destination.dead_until_ms <= queue::wall_clock_ms()) {
    destinations_.erase(it);  // nothing left to remember about it
  }
}

}  // namespace relayq::mta
