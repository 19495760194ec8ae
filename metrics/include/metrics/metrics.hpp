// The contract's Prometheus metrics, each declared once with its help text, and the exposer
// that serves them at /metrics.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "metrics/counter.hpp"
#include "metrics/gauge.hpp"
#include "metrics/histogram.hpp"
#include "metrics/labels.hpp"
#include "metrics/sources.hpp"

namespace relayq::metrics {

namespace detail {
template <class Metric>
class Family;
class QueueCollector;
class StoreCollector;
}  // namespace detail

// Updates (Increment, Decrement, Observe) are lock-free and shard per thread, so loops never
// contend. Accessors without label arguments, and those whose labels come from a fixed set
// (queue_messages, outbound_replies, the known policy results), are lock-free too. The others
// take their family's lock to find or create the series: call them once and keep the
// reference, which stays valid as long as the Metrics.
class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // What MetricsServer serves; it keeps every metric alive while a scrape runs.
  std::shared_ptr<prometheus::Collectable> registry() const { return registry_; }

  // Locks. Listeners are registered at start so that their counters exist at zero before the
  // first message; each (listener, reason) likewise.
  Counter& messages_received(const std::string& listener);
  Counter& messages_rejected(const std::string& listener, RejectReason reason);

  Counter& recipients_delivered() { return *recipients_delivered_; }
  Counter& recipients_deferred() { return *recipients_deferred_; }
  Counter& recipients_bounced() { return *recipients_bounced_; }
  Gauge& queue_messages(QueueState state);
  Gauge& queue_oldest_message_age();
  Histogram& accept_duration() { return *accept_duration_; }
  Histogram& delivery_duration() { return *delivery_duration_; }
  Histogram& time_in_queue() { return *time_in_queue_; }
  UpDownGauge& inbound_connections() { return *inbound_connections_; }
  UpDownGauge& outbound_connections() { return *outbound_connections_; }
  // Lock-free for the results RFC 8601 defines for the check, which exist at zero from the
  // start (see metrics.cpp); any other pair is made under the lock on first use.
  Counter& policy_result(PolicyCheck check, PolicyResult result);
  Counter& outbound_replies(ReplyClass reply_class);
  Counter& tls_handshakes(Direction direction, TlsResult result);
  // Adaptive back-off: steps down after "slow down" replies, and destinations slowed now.
  Counter& delivery_slowdowns() { return *delivery_slowdowns_; }
  UpDownGauge& destinations_slowed() { return *destinations_slowed_; }
  // Locks: the delivery engine looks each (category, result) up once, when it starts, so that
  // the whole bounded set is present at zero.
  Counter& delivery_failures(std::string_view category, FailureResult result);

  // Scrape-time sources, called on the exposer's thread at every scrape; they must be
  // thread-safe and should not throw (a throwing source hides its series for that scrape).
  // Replace with {} to remove: once the call returns, the old source is not running and will
  // not be called again.
  // The queue's gauges: while set, it overrides queue_messages()/queue_oldest_message_age().
  void set_queue_gauges_source(std::function<QueueGauges()> source);
  // relayq_queue_store_*: absent until a source is set.
  void set_store_gauges_source(std::function<StoreGauges()> source);

 private:
  struct KnownSeries {
    PolicyCheck check;
    PolicyResult result;
    Counter* counter;
  };

  std::shared_ptr<prometheus::Collectable> registry_;
  detail::Family<Counter>* received_family_;
  detail::Family<Counter>* rejected_family_;
  detail::Family<Counter>* policy_family_;
  detail::Family<Counter>* failures_family_;
  detail::QueueCollector* queue_;
  detail::StoreCollector* store_;
  Counter* recipients_delivered_;
  Counter* recipients_deferred_;
  Counter* recipients_bounced_;
  Histogram* accept_duration_;
  Histogram* delivery_duration_;
  Histogram* time_in_queue_;
  UpDownGauge* inbound_connections_;
  UpDownGauge* outbound_connections_;
  std::array<Counter*, 4> outbound_replies_;  // 2xx 4xx 5xx error
  std::array<Counter*, 4> tls_handshakes_;    // by direction, then result
  Counter* delivery_slowdowns_;
  UpDownGauge* destinations_slowed_;
  std::vector<KnownSeries> known_policy_results_;
};

// Serves a registry over HTTP at http://<listen>/metrics until destroyed.
class MetricsServer {
 public:
  // listen: "host:port" ("[v6]:port" accepted; port 0 picks a free one). Throws
  // std::runtime_error if it cannot bind.
  MetricsServer(const std::string& listen, std::shared_ptr<prometheus::Collectable> registry);
  ~MetricsServer();

  // The port actually bound.
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::metrics
