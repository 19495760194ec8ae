// The HTTP endpoint serving the registry at /metrics, on cpp-httplib (whose worker threads
// have ordinary stacks: civetweb's small ones overflow under AddressSanitizer).
#include <httplib.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "metrics/metrics.hpp"

namespace relayq::metrics {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> accept_loop_ended{false};
  int port = 0;
};

MetricsServer::MetricsServer(const std::string& listen,
                             std::shared_ptr<prometheus::Collectable> registry)
    : impl_(std::make_unique<Impl>()) {
  // "ip:port" or "[v6]:port"; the config has validated the form already.
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics: bad address " + listen);
  std::string host = listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(listen.substr(colon + 1));

  auto& server = impl_->server;
  server.set_socket_options([](socket_t sock) {
    int yes = 1;  // not SO_REUSEPORT: a second relayq on the same port must fail to start
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_keep_alive_timeout(2);
  server.Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus::TextSerializer().Serialize(registry->Collect()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  impl_->port =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (impl_->port <= 0) throw std::runtime_error("metrics: cannot listen on " + listen);
  impl_->thread = std::thread([impl = impl_.get()] {
    impl->server.listen_after_bind();
    impl->accept_loop_ended = true;
  });
  // stop() is a no-op until the accept loop runs: wait for it, so the destructor cannot miss it.
  while (!server.is_running() && !impl_->accept_loop_ended)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t MetricsServer::port() const {
  return static_cast<std::uint16_t>(impl_->port);
}

}  // namespace relayq::metrics
