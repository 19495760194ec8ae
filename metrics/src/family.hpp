// A metric family: a name, help text and label names, and its series, created under the
// family's lock on first use and never removed, so that callers may keep references to them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include "collector.hpp"
#include "metrics/counter.hpp"
#include "metrics/gauge.hpp"
#include "metrics/histogram.hpp"

namespace relayq::metrics::detail {

// How each metric type is exposed: its Prometheus type and one sample of it.
prometheus::MetricType type_of(const Counter*);
prometheus::MetricType type_of(const UpDownGauge*);
prometheus::MetricType type_of(const Gauge*);
prometheus::MetricType type_of(const Histogram*);
void sample(const Counter& metric, prometheus::ClientMetric& out);
void sample(const UpDownGauge& metric, prometheus::ClientMetric& out);
void sample(const Gauge& metric, prometheus::ClientMetric& out);
void sample(const Histogram& metric, prometheus::ClientMetric& out);

// A family of one unlabeled sample, for values read at scrape time (process, store).
prometheus::MetricFamily single_sample(std::string name, std::string help,
                                       prometheus::MetricType type, double value);

template <class Metric>
class Family final : public Collector {
 public:
  using Factory = std::function<std::unique_ptr<Metric>()>;

  Family(
      std::string name, std::string help, std::vector<std::string> label_names,
      Factory make = [] { return std::make_unique<Metric>(); })
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // Cold path (takes the lock): callers look a series up once and keep the reference, which
  // stays valid as long as the registry.
  Metric& with(std::vector<std::string> label_values) {
    if (label_values.size() != label_names_.size())
      throw std::invalid_argument(name_ + ": wrong number of label values");
    std::lock_guard lock(mutex_);
    auto& series = series_[std::move(label_values)];
    if (!series) series = make_();
    return *series;
  }

  void collect(std::vector<prometheus::MetricFamily>& out) const override {
    prometheus::MetricFamily family{name_, help_, type_of(static_cast<const Metric*>(nullptr)), {}};
    std::lock_guard lock(mutex_);
    for (const auto& [label_values, metric] : series_) {
      prometheus::ClientMetric& client = family.metric.emplace_back();
      for (std::size_t i = 0; i < label_names_.size(); ++i)
        client.label.push_back({label_names_[i], label_values[i]});
      sample(*metric, client);
    }
    out.push_back(std::move(family));
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const Factory make_;
  mutable std::mutex mutex_;
  // Ordered, so that a scrape lists series in a stable order.
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

}  // namespace relayq::metrics::detail
