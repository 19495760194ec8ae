// The HTTP exposer (prometheus-cpp's civetweb server) serving the registry at /metrics.
#include <prometheus/exposer.h>

#include "metrics/metrics.hpp"

namespace relayq::metrics {

struct MetricsServer::Impl {
  prometheus::Exposer exposer;
  // Two threads, so that a slow scraper does not block the next scrape.
  explicit Impl(const std::string& listen) : exposer(listen, 2) {}
};

MetricsServer::MetricsServer(const std::string& listen,
                             std::shared_ptr<prometheus::Collectable> registry)
    : impl_(std::make_unique<Impl>(listen)) {
  impl_->exposer.RegisterCollectable(registry);
}

MetricsServer::~MetricsServer() = default;

std::uint16_t MetricsServer::port() const {
  return static_cast<std::uint16_t>(impl_->exposer.GetListeningPorts().at(0));
}

}  // namespace relayq::metrics
