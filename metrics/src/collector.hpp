// The registry the exposer scrapes: an ordered list of collectors, each producing metric
// families on demand.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace relayq::metrics::detail {

class Collector {
 public:
  virtual ~Collector() = default;
  // Appends this collector's families; called on the exposer's threads, maybe concurrently.
  virtual void collect(std::vector<prometheus::MetricFamily>& out) const = 0;
};

class Registry final : public prometheus::Collectable {
 public:
  // Only while the registry is built, before it is shared: the list is read without a lock.
  template <class C, class... Args>
  C& add(Args&&... args) {
    auto collector = std::make_unique<C>(std::forward<Args>(args)...);
    C& added = *collector;
    collectors_.push_back(std::move(collector));
    return added;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    for (const auto& collector : collectors_) collector->collect(out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<Collector>> collectors_;
};

}  // namespace relayq::metrics::detail
