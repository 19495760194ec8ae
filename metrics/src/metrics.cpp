// Declarations of the contract's metrics: names, help texts, labels and histogram buckets.
#include "metrics/metrics.hpp"

#include "collector.hpp"
#include "family.hpp"
#include "process_collector.hpp"
#include "queue_collector.hpp"
#include "store_collector.hpp"

namespace relayq::metrics {

namespace {

using detail::Family;

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

Family<Histogram>::Factory histogram_with(Histogram::BucketBoundaries bounds) {
  return [bounds] { return std::make_unique<Histogram>(bounds); };
}

// The results RFC 8601 defines for each check (2.7.1 dkim, 2.7.2 spf, 2.7.3 iprev, which is
// our rdns) and RFC 7489 11.2 for dmarc, present at zero from the start so that dashboards see
// every outcome.
struct PolicyResults {
  PolicyCheck check;
  std::vector<PolicyResult> results;
};
const std::vector<PolicyResults>& known_policy_results() {
  using R = PolicyResult;
  static const std::vector<PolicyResults> known = {
      {PolicyCheck::spf,
       {R::none, R::pass, R::fail, R::softfail, R::policy, R::neutral, R::temperror, R::permerror}},
      {PolicyCheck::dkim,
       {R::none, R::pass, R::fail, R::policy, R::neutral, R::temperror, R::permerror}},
      {PolicyCheck::dmarc, {R::none, R::pass, R::fail, R::temperror, R::permerror}},
      {PolicyCheck::rdns, {R::pass, R::fail, R::temperror, R::permerror}},
  };
  return known;
}

}  // namespace

Metrics::Metrics() {
  auto registry = std::make_shared<detail::Registry>();
  auto& r = *registry;
  received_family_ =
      &r.add<Family<Counter>>("relayq_messages_received_total",
                              "Messages accepted and stored durably (250 sent), by listener.",
                              std::vector<std::string>{"listener"});
  rejected_family_ =
      &r.add<Family<Counter>>("relayq_messages_rejected_total",
                              "Transactions or recipients refused, by listener and reason.",
                              std::vector<std::string>{"listener", "reason"});
  recipients_delivered_ = &r.add<Family<Counter>>("relayq_recipients_delivered_total",
                                                  "Recipients accepted by the next hop (2xx).",
                                                  std::vector<std::string>{})
                               .with({});
  recipients_deferred_ =
      &r.add<Family<Counter>>("relayq_recipients_deferred_total",
                              "Recipient delivery attempts that failed temporarily.",
                              std::vector<std::string>{})
           .with({});
  recipients_bounced_ =
      &r.add<Family<Counter>>("relayq_recipients_bounced_total",
                              "Recipients that failed permanently (5xx or max_age).",
                              std::vector<std::string>{})
           .with({});
  // relayq_queue_messages and relayq_queue_oldest_message_age_seconds: see queue_collector.cpp.
  queue_ = &r.add<detail::QueueCollector>();
  accept_duration_ =
      &r.add<Family<Histogram>>("relayq_accept_duration_seconds",
                                "From the end of DATA until the 250 reply is sent.",
                                std::vector<std::string>{}, histogram_with(accept_buckets()))
           .with({});
  delivery_duration_ =
      &r.add<Family<Histogram>>("relayq_delivery_duration_seconds",
                                "Duration of one outbound delivery attempt.",
                                std::vector<std::string>{}, histogram_with(delivery_buckets()))
           .with({});
  time_in_queue_ =
      &r.add<Family<Histogram>>("relayq_time_in_queue_seconds",
                                "From reception until final delivery of a recipient.",
                                std::vector<std::string>{}, histogram_with(time_in_queue_buckets()))
           .with({});
  auto& connections =
      r.add<Family<UpDownGauge>>("relayq_smtp_connections", "Open SMTP connections by direction.",
                                 std::vector<std::string>{"direction"});
  inbound_connections_ = &connections.with({"inbound"});
  outbound_connections_ = &connections.with({"outbound"});
  policy_family_ = &r.add<Family<Counter>>(
      "relayq_policy_results_total",
      "Policy check outcomes, by check (spf, dkim, dmarc, rdns) and result.",
      std::vector<std::string>{"check", "result"});
  for (const auto& [check, results] : known_policy_results()) {
    for (const PolicyResult result : results) {
      known_policy_results_.push_back(
          {check, result,
           &policy_family_->with({std::string(label(check)), std::string(label(result))})});
    }
  }
  auto& replies = r.add<Family<Counter>>("relayq_outbound_replies_total",
                                         "Replies from next hops by class (2xx, 4xx, 5xx, error).",
                                         std::vector<std::string>{"class"});
  for (const ReplyClass reply_class : kReplyClasses)
    outbound_replies_[static_cast<std::size_t>(reply_class)] =
        &replies.with({std::string(label(reply_class))});
  failures_family_ = &r.add<Family<Counter>>(
      "relayq_delivery_failures_total",
      "Failed delivery attempts of a recipient, by the reply's category (bad_mailbox, "
      "rate_limit, ...) and result (deferred, bounced).",
      std::vector<std::string>{"category", "result"});
  auto& handshakes = r.add<Family<Counter>>(
      "relayq_tls_handshakes_total",
      "TLS handshakes by direction (inbound: STARTTLS and smtps; outbound: STARTTLS to next "
      "hops) and result (ok, failed).",
      std::vector<std::string>{"direction", "result"});
  for (const Direction direction : kDirections)
    for (const TlsResult result : kTlsResults)
      tls_handshakes_[static_cast<std::size_t>(direction) * 2 + static_cast<std::size_t>(result)] =
          &handshakes.with({std::string(label(direction)), std::string(label(result))});
  delivery_slowdowns_ =
      &r.add<Family<Counter>>("relayq_delivery_slowdowns_total",
                              "Steps down of a destination's rate and connections after a reply "
                              "that means slow down (421, 4.7.28 and the like).",
                              std::vector<std::string>{})
           .with({});
  destinations_slowed_ =
      &r.add<Family<UpDownGauge>>("relayq_destinations_slowed",
                                  "Destinations whose rate and connections are lowered now.",
                                  std::vector<std::string>{})
           .with({});
  store_ = &r.add<detail::StoreCollector>();
  r.add<detail::ProcessCollector>();
  registry_ = std::move(registry);
}

Metrics::~Metrics() = default;

Counter& Metrics::messages_received(const std::string& listener) {
  return received_family_->with({listener});
}

Counter& Metrics::messages_rejected(const std::string& listener, RejectReason reason) {
  return rejected_family_->with({listener, std::string(label(reason))});
}

Gauge& Metrics::queue_messages(QueueState state) {
  return queue_->messages(state);
}

Gauge& Metrics::queue_oldest_message_age() {
  return queue_->oldest_message_age();
}

Counter& Metrics::policy_result(PolicyCheck check, PolicyResult result) {
  for (const KnownSeries& known : known_policy_results_) {
    if (known.check == check && known.result == result) return *known.counter;
  }
  // A result RFC 8601 does not define for this check (rdns "none", say): made on first use.
  return policy_family_->with({std::string(label(check)), std::string(label(result))});
}

Counter& Metrics::outbound_replies(ReplyClass reply_class) {
  return *outbound_replies_[static_cast<std::size_t>(reply_class)];
}

Counter& Metrics::tls_handshakes(Direction direction, TlsResult result) {
  return *tls_handshakes_[static_cast<std::size_t>(direction) * 2 +
                          static_cast<std::size_t>(result)];
}

Counter& Metrics::delivery_failures(std::string_view category, FailureResult result) {
  return failures_family_->with({std::string(category), std::string(label(result))});
}

void Metrics::set_queue_gauges_source(std::function<QueueGauges()> source) {
  queue_->set_source(std::move(source));
}

void Metrics::set_store_gauges_source(std::function<StoreGauges()> source) {
  store_->set_source(std::move(source));
}

}  // namespace relayq::metrics
