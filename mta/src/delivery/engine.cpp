// The engine's life: construction, start/stop, reloads, and the ways in to the pipeline schedule
// -> load -> destinations -> connections -> replies -> commit (a DSN when something bounced) ->
// schedule again. Loop thread only (add_due also before start); after stop() nothing new starts.
#include "mta/delivery/engine.hpp"

#include "queue/clock.hpp"

namespace relayq::mta {

DeliveryEngine::DeliveryEngine(net::LoopThread& loop, queue::Store& store,
                               metrics::Metrics& metrics,
                               std::shared_ptr<const DeliverySettings> settings,
                               std::shared_ptr<dns::Cache> dns_cache,
                               std::shared_ptr<Shaper> shaper,
                               std::function<void(queue::MessageId)> route_message,
                               QueueCensus& census)
    : loop_(loop),
      store_(store),
      metrics_(metrics),
      settings_(std::move(settings)),
      dns_cache_(std::move(dns_cache)),
      shaper_(std::move(shaper)),
      route_message_(std::move(route_message)),
      census_(census),
      random_(std::random_device{}()) {
  // Every (category, result) exists from the start, at zero, for dashboards and alerts.
  for (const ReplyCategory category : kReplyCategories)
    for (const metrics::FailureResult result : metrics::kFailureResults)
      failure_counters_[static_cast<std::size_t>(category)][static_cast<std::size_t>(result)] =
          &metrics_.delivery_failures(to_string(category), result);
}

DeliveryEngine::~DeliveryEngine() = default;

void DeliveryEngine::add_due(const std::vector<queue::DueEntry>& entries) {
  if (stopped_) return;
  for (const auto& entry : entries) schedule_.add(entry);
  if (started_) pump_schedule();
}

void DeliveryEngine::start() {
  resolver_ = std::make_unique<dns::Resolver>(loop_.loop(), settings_->resolver, dns_cache_);
  uv_timer_init(loop_.loop(), &schedule_timer_);
  schedule_timer_.data = this;
  uv_timer_init(loop_.loop(), &wake_timer_);
  wake_timer_.data = this;
  started_ = true;
  pump_schedule();
}

void DeliveryEngine::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&schedule_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_timer_), nullptr);
  for (auto& [pointer, connection] : connections_) connection->shut_down();
  resolver_->shutdown();
}

void DeliveryEngine::update_settings(std::shared_ptr<const DeliverySettings> settings) {
  if (stopped_) return;
  if (settings->resolver.servers != settings_->resolver.servers) {
    // Lookups in flight complete as temporary failures and are retried on the new servers.
    resolver_->shutdown();
    resolver_ = std::make_unique<dns::Resolver>(loop_.loop(), settings->resolver, dns_cache_);
  }
  settings_ = std::move(settings);
  // Destinations with nothing open look their lanes up again: a new [shaping] entry may be
  // theirs now. The others keep theirs (whose limits the shaper has updated) until then.
  for (auto& [key, destination] : destinations_) {
    if (destination.connections.empty() && destination.resolving == 0 && !destination.finding_lane)
      destination.lane.reset();
  }
}

void DeliveryEngine::load_then(queue::MessageId id, bool with_body, Loaded then) {
  net::LoopThread* loop = &loop_;
  store_.load(id, with_body, [this, loop, id, then](std::optional<queue::Message> message) {
    auto shared = std::make_shared<std::optional<queue::Message>>(std::move(message));
    loop->post([this, id, shared, then] { (this->*then)(id, std::move(*shared)); });
  });
}

void DeliveryEngine::deliver_now(queue::MessageId id) {
  if (stopped_) return;
  if (auto it = active_.find(id); it != active_.end()) {
    it->second.postponed.push_back({queue::wall_clock_ms(), id, 0});
    return;
  }
  activate(id);
}

}  // namespace relayq::mta
