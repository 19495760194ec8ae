// class Daemon: the daemon's state and the steps of its life, defined by lifecycle.cpp,
// reload.cpp and queue_loader.cpp (each file says which thread runs its part). Private to the
// daemon area: from outside, run_daemon() is the way in.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "daemon/worker.hpp"
#include "metrics/metrics.hpp"
#include "mta/admin/server.hpp"
#include "mta/config/config.hpp"
#include "mta/daemon/daemon_queue_admin.hpp"
#include "mta/inbound/listeners.hpp"
#include "queue/census.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

class Daemon {
 public:
  explicit Daemon(Config config) : config_(std::move(config)) {}
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts everything, waits for SIGTERM/SIGINT, stops; returns the process exit code.
  int run();

 private:
  // Start-up, routing to the owning loop, the wait for signals and the stop (lifecycle.cpp).
  void create_workers();
  Worker& owner_of(queue::MessageId id);
  void deliver(queue::MessageId id);
  void wait_for_signals();
  void wait_for_connections(std::chrono::steady_clock::duration limit);
  void stop();

  // SIGHUP (reload.cpp).
  void reload();

  // The background readers of the queue and the gauges built on them (queue_loader.cpp).
  void load_schedule();
  void start_metrics_sources();

  // The config in force: the one started with, then each accepted reload.
  Config config_;
  // Metrics, and the census the queue gauges are read from.
  metrics::Metrics metrics_;
  QueueCensus census_;
  // Every loop's destinations share their lanes (made by create_workers, reloaded by reload()).
  std::shared_ptr<Shaper> shaper_;
  // The background readers started by run().
  std::thread census_thread_;
  std::thread schedule_loader_;  // reads the due index once, after start
  // Cuts the census and the schedule loader short at stop.
  std::atomic<bool> stopping_background_{false};
  // What run() opens. Members are destroyed in reverse order of declaration: keep the order.
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<queue::Store> store_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Listeners> listeners_;  // made with the loops
  std::unique_ptr<DaemonQueueAdmin> queue_admin_;
  std::unique_ptr<AdminServer> admin_server_;
};

}  // namespace relayq::mta
