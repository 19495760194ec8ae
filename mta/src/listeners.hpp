// The configured listeners across all loops: opened at start, added, changed and closed by a
// reload (a removed listener stops accepting; its sessions finish on their own).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mta/config.hpp"
#include "worker.hpp"

namespace relayq::mta {

class Listeners {
 public:
  Listeners(std::vector<std::unique_ptr<Worker>>& workers, metrics::Metrics& metrics)
      : workers_(workers), metrics_(metrics) {}

  // Binds one socket per loop (SO_REUSEPORT) now, so that errors are reported here; the
  // loops start accepting as soon as they run. Throws std::runtime_error.
  void open(const ListenerConfig& listener, std::shared_ptr<const ServerSessionConfig> session);
  // New settings for new connections of an open listener.
  void update(const ListenerConfig& listener, std::shared_ptr<const ServerSessionConfig> session);
  // Stops accepting on `address`; connections in progress go on.
  void close(const std::string& address);
  // Stops accepting everywhere (shutdown).
  void close_all();

  bool is_open(const std::string& address) const;
  std::vector<std::string> addresses() const;
  std::size_t open_connections() const;

 private:
  void close_on_loops(ListenerShared* listener);

  std::vector<std::unique_ptr<Worker>>& workers_;
  metrics::Metrics& metrics_;
  std::vector<std::unique_ptr<ListenerShared>> open_;
  // Closed listeners stay allocated: connections still in progress refer to them.
  std::vector<std::unique_ptr<ListenerShared>> closed_;
};

}  // namespace relayq::mta
