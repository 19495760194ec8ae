// Declarations of the contract's queue gauges, and their refresh from the daemon's source.
#include "queue_collector.hpp"

#include <string>

namespace relayq::metrics::detail {

QueueCollector::QueueCollector()
    : messages_family_("relayq_queue_messages",
                       "Messages in the queue by state: ready (due now), scheduled (waiting for "
                       "a retry), held (by an operator).",
                       {"state"}),
      oldest_age_family_("relayq_queue_oldest_message_age_seconds",
                         "Age of the oldest message in the queue; 0 when the queue is empty.", {}),
      ready_(&messages_family_.with({std::string(label(QueueState::ready))})),
      scheduled_(&messages_family_.with({std::string(label(QueueState::scheduled))})),
      held_(&messages_family_.with({std::string(label(QueueState::held))})),
      oldest_age_(&oldest_age_family_.with({})) {}

Gauge& QueueCollector::messages(QueueState state) {
  switch (state) {
    case QueueState::ready:
      return *ready_;
    case QueueState::scheduled:
      return *scheduled_;
    case QueueState::held:
      break;
  }
  return *held_;
}

void QueueCollector::collect(std::vector<prometheus::MetricFamily>& out) const {
  if (const auto gauges = source_.read()) {
    ready_->Set(static_cast<double>(gauges->ready));
    scheduled_->Set(static_cast<double>(gauges->scheduled));
    held_->Set(static_cast<double>(gauges->held));
    oldest_age_->Set(gauges->oldest_message_age_seconds);
  }
  messages_family_.collect(out);
  oldest_age_family_.collect(out);
}

}  // namespace relayq::metrics::detail
