// The HTTP endpoint serving the registry at /metrics, on the shared HttpServer (cpp-httplib,
// whose worker threads have ordinary stacks: civetweb's small ones overflow under
// AddressSanitizer). Scrapes run on its threads.
#include <prometheus/text_serializer.h>

#include "metrics/http_server.hpp"
#include "metrics/metrics.hpp"

namespace relayq::metrics {

struct MetricsServer::Impl {
  HttpServer http{"metrics"};
};

MetricsServer::MetricsServer(const std::string& listen,
                             std::shared_ptr<prometheus::Collectable> registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->http.server().Get(
      "/metrics", [registry](const httplib::Request&, httplib::Response& response) {
        response.set_content(prometheus::TextSerializer().Serialize(registry->Collect()),
                             "text/plain; version=0.0.4; charset=utf-8");
      });
  impl_->http.start(listen);
}

MetricsServer::~MetricsServer() = default;

std::uint16_t MetricsServer::port() const {
  return impl_->http.port();
}

}  // namespace relayq::metrics
