// Turning each metric type into a Prometheus sample.
#include "family.hpp"

#include <limits>

namespace relayq::metrics::detail {

using prometheus::ClientMetric;
using prometheus::MetricType;

MetricType type_of(const Counter*) {
  return MetricType::Counter;
}
MetricType type_of(const UpDownGauge*) {
  return MetricType::Gauge;
}
MetricType type_of(const Gauge*) {
  return MetricType::Gauge;
}
MetricType type_of(const Histogram*) {
  return MetricType::Histogram;
}

void sample(const Counter& metric, ClientMetric& out) {
  out.counter.value = static_cast<double>(metric.value());
}

void sample(const UpDownGauge& metric, ClientMetric& out) {
  out.gauge.value = static_cast<double>(metric.value());
}

void sample(const Gauge& metric, ClientMetric& out) {
  out.gauge.value = metric.value();
}

void sample(const Histogram& metric, ClientMetric& out) {
  const Histogram::Snapshot snapshot = metric.snapshot();
  const auto& bounds = metric.bounds();
  for (std::size_t i = 0; i < snapshot.cumulative.size(); ++i) {
    const double upper = i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity();
    out.histogram.bucket.push_back({snapshot.cumulative[i], upper});
  }
  out.histogram.sample_count = snapshot.count;
  out.histogram.sample_sum = snapshot.sum;
}

prometheus::MetricFamily single_sample(std::string name, std::string help, MetricType type,
                                       double value) {
  ClientMetric client;
  if (type == MetricType::Counter) {
    client.counter.value = value;
  } else {
    client.gauge.value = value;
  }
  return {std::move(name), std::move(help), type, {std::move(client)}};
}

}  // namespace relayq::metrics::detail
