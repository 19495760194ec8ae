// Declarations of the contract's metrics: names, help texts, labels and histogram buckets.
#include "metrics/metrics.hpp"

#include <prometheus/exposer.h>

namespace relayq::metrics {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Accepting a message is an fsync away: sub-millisecond to a few seconds.
Histogram::BucketBoundaries accept_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}
// One outbound attempt: connection set-up plus a transaction, up to the RFC 5321 timeouts.
Histogram::BucketBoundaries delivery_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600};
}
// From reception to final delivery: seconds when all goes well, days with retries.
Histogram::BucketBoundaries time_in_queue_buckets() {
  return {0.01, 0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 5 * 86400};
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  received_family_ = &BuildCounter()
                          .Name("relayq_messages_received_total")
                          .Help("Messages accepted and stored durably (250 sent), by listener.")
                          .Register(r);
  rejected_family_ = &BuildCounter()
                          .Name("relayq_messages_rejected_total")
                          .Help("Transactions or recipients refused, by listener and reason.")
                          .Register(r);
  recipients_delivered_ = &BuildCounter()
                               .Name("relayq_recipients_delivered_total")
                               .Help("Recipients accepted by the next hop (2xx).")
                               .Register(r)
                               .Add({});
  recipients_deferred_ = &BuildCounter()
                              .Name("relayq_recipients_deferred_total")
                              .Help("Recipient delivery attempts that failed temporarily.")
                              .Register(r)
                              .Add({});
  recipients_bounced_ = &BuildCounter()
                             .Name("relayq_recipients_bounced_total")
                             .Help("Recipients that failed permanently (5xx or max_age).")
                             .Register(r)
                             .Add({});
  queue_messages_family_ = &BuildGauge()
                                .Name("relayq_queue_messages")
                                .Help("Messages in the queue by state: ready, scheduled, held.")
                                .Register(r);
  for (const char* state : {"ready", "scheduled", "held"})
    queue_messages_family_->Add({{"state", state}});
  queue_oldest_age_ = &BuildGauge()
                           .Name("relayq_queue_oldest_message_age_seconds")
                           .Help("Age of the oldest message in the queue.")
                           .Register(r)
                           .Add({});
  accept_duration_ = &BuildHistogram()
                          .Name("relayq_accept_duration_seconds")
                          .Help("From the end of DATA until the 250 reply is sent.")
                          .Register(r)
                          .Add({}, accept_buckets());
  delivery_duration_ = &BuildHistogram()
                            .Name("relayq_delivery_duration_seconds")
                            .Help("Duration of one outbound delivery attempt.")
                            .Register(r)
                            .Add({}, delivery_buckets());
  time_in_queue_ = &BuildHistogram()
                        .Name("relayq_time_in_queue_seconds")
                        .Help("From reception until final delivery of a recipient.")
                        .Register(r)
                        .Add({}, time_in_queue_buckets());
  auto& connections = BuildGauge()
                          .Name("relayq_smtp_connections")
                          .Help("Open SMTP connections by direction.")
                          .Register(r);
  inbound_connections_ = &connections.Add({{"direction", "inbound"}});
  outbound_connections_ = &connections.Add({{"direction", "outbound"}});
  policy_family_ = &BuildCounter()
                        .Name("relayq_policy_results_total")
                        .Help("Policy check outcomes, by check (spf, dkim, rdns) and result.")
                        .Register(r);
  outbound_replies_family_ = &BuildCounter()
                                  .Name("relayq_outbound_replies_total")
                                  .Help("Replies from next hops by class (2xx, 4xx, 5xx, error).")
                                  .Register(r);
  for (const char* reply_class : {"2xx", "4xx", "5xx", "error"})
    outbound_replies_family_->Add({{"class", reply_class}});
}

Metrics::~Metrics() = default;

prometheus::Counter& Metrics::messages_received(const std::string& listener) {
  return received_family_->Add({{"listener", listener}});
}

prometheus::Counter& Metrics::messages_rejected(const std::string& listener,
                                                const std::string& reason) {
  return rejected_family_->Add({{"listener", listener}, {"reason", reason}});
}

prometheus::Gauge& Metrics::queue_messages(std::string_view state) {
  return queue_messages_family_->Add({{"state", std::string(state)}});
}

prometheus::Counter& Metrics::policy_result(const std::string& check, const std::string& result) {
  return policy_family_->Add({{"check", check}, {"result", result}});
}

prometheus::Counter& Metrics::outbound_replies(std::string_view reply_class) {
  return outbound_replies_family_->Add({{"class", std::string(reply_class)}});
}

struct MetricsServer::Impl {
  prometheus::Exposer exposer;
  explicit Impl(const std::string& listen) : exposer(listen, 2) {}
};

MetricsServer::MetricsServer(const std::string& listen,
                             std::shared_ptr<prometheus::Registry> registry)
    : impl_(std::make_unique<Impl>(listen)) {
  impl_->exposer.RegisterCollectable(registry);
}

MetricsServer::~MetricsServer() = default;

}  // namespace relayq::metrics
