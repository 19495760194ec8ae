// The contract's Prometheus metrics, each declared once with its help text, and the exposer
// that serves them at /metrics.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace relayq::metrics {

// Counters and gauges are lock-free atomics. Families are looked up (under their lock) only
// when a listener or reason is first seen; callers keep the returned references.
class Metrics {
 public:
  Metrics();
  ~Metrics();

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // Series are created on first use; listeners are registered at start so that their
  // counters exist at zero before the first message.
  prometheus::Counter& messages_received(const std::string& listener);
  prometheus::Counter& messages_rejected(const std::string& listener, const std::string& reason);

  prometheus::Counter& recipients_delivered() { return *recipients_delivered_; }
  prometheus::Counter& recipients_deferred() { return *recipients_deferred_; }
  prometheus::Counter& recipients_bounced() { return *recipients_bounced_; }
  prometheus::Gauge& queue_messages(std::string_view state);  // ready | scheduled | held
  prometheus::Gauge& queue_oldest_message_age() { return *queue_oldest_age_; }
  prometheus::Histogram& accept_duration() { return *accept_duration_; }
  prometheus::Histogram& delivery_duration() { return *delivery_duration_; }
  prometheus::Histogram& time_in_queue() { return *time_in_queue_; }
  prometheus::Gauge& inbound_connections() { return *inbound_connections_; }
  prometheus::Gauge& outbound_connections() { return *outbound_connections_; }
  prometheus::Counter& policy_result(const std::string& check, const std::string& result);
  prometheus::Counter& outbound_replies(std::string_view reply_class);  // 2xx 4xx 5xx error

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* received_family_;
  prometheus::Family<prometheus::Counter>* rejected_family_;
  prometheus::Family<prometheus::Gauge>* queue_messages_family_;
  prometheus::Family<prometheus::Counter>* policy_family_;
  prometheus::Family<prometheus::Counter>* outbound_replies_family_;
  prometheus::Counter* recipients_delivered_;
  prometheus::Counter* recipients_deferred_;
  prometheus::Counter* recipients_bounced_;
  prometheus::Gauge* queue_oldest_age_;
  prometheus::Histogram* accept_duration_;
  prometheus::Histogram* delivery_duration_;
  prometheus::Histogram* time_in_queue_;
  prometheus::Gauge* inbound_connections_;
  prometheus::Gauge* outbound_connections_;
};

// Serves a registry over HTTP at http://<listen>/metrics until destroyed.
class MetricsServer {
 public:
  // listen: "host:port" ("[v6]:port" accepted). Throws std::runtime_error if it cannot bind.
  MetricsServer(const std::string& listen, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::metrics
