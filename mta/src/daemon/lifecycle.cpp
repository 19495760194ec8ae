// The daemon's start-up, its wait for signals, its graceful stop, and run_daemon(): on the main
// thread, except deliver() and the admin dispatch, which run on their callers' threads and only
// post to the owning loop. run() returns 1 when something could not start, 0 after a clean stop.
#include "mta/daemon/daemon.hpp"

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/daemon.hpp"
#include "daemon/settings.hpp"
#include "dns/resolver.hpp"
#include "mta/common/log_format.hpp"

namespace relayq::mta {

namespace {

// How often freed heap memory is handed back to the system (see wait_for_signals()).
constexpr std::uint64_t kTrimIntervalMs = 10'000;

// The signals wait_for_signals() handles (see block_daemon_signals()).
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int signum : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, signum);
  return set;
}

}  // namespace

void block_daemon_signals() {
  const sigset_t handled = handled_signals();
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
}

// A start that failed half-way leaves the background readers running.
Daemon::~Daemon() {
  stopping_background_ = true;
  if (schedule_loader_.joinable()) schedule_loader_.join();
  if (census_thread_.joinable()) census_thread_.join();
}

int Daemon::run() {
  ::signal(SIGPIPE, SIG_IGN);
  // libuv's worker pool (password hashes, DKIM signatures and their checks) has 4 threads
  // unless told otherwise, read when it is first used: one per core, so that signing uses them
  // all. An operator's own UV_THREADPOOL_SIZE wins.
  const unsigned cores = std::max(4u, std::thread::hardware_concurrency());
  ::setenv("UV_THREADPOOL_SIZE", std::to_string(cores).c_str(), 0);
  try {
    store_ = queue::Store::open({.path = config_.queue.path, .read_only = false});
  } catch (const std::exception& error) {
    spdlog::critical("event=start_failed error={}", quoted(error.what()));
    return 1;
  }
  try {
    create_workers();
  } catch (const ConfigError& error) {  // a CA file that does not load
    spdlog::critical("event=start_failed error={}", quoted(error.what()));
    return 2;
  }
  start_metrics_sources();
  try {
    metrics_server_ =
        std::make_unique<metrics::MetricsServer>(config_.metrics.listen, metrics_.registry());
    const InboundFiles files = load_inbound_files(config_);
    for (const auto& listener : config_.listeners)
      listeners_->open(listener, listener_settings_for(config_, listener, *store_, files));
  } catch (const std::exception& error) {
    spdlog::critical("event=start_failed error={}", quoted(error.what()));
    return 1;
  }
  for (auto& worker : workers_) {
    DeliveryEngine* engine = worker->engine.get();
    worker->thread.start([engine] { engine->start(); });
  }
  schedule_loader_ = std::thread([this] { load_schedule(); });
  // Last, so that its /healthz answers only once the relay takes mail.
  queue_admin_ = std::make_unique<DaemonQueueAdmin>(
      *store_,
      [this](queue::MessageId id, DeliveryEngine::AdminAction action, QueueAdmin::Done done) {
        DeliveryEngine* engine = owner_of(id).engine.get();
        owner_of(id).thread.post(
            [engine, id, action, done = std::move(done)] { engine->admin(id, action, done); });
      },
      shaper_);
  try {
    admin_server_ =
        std::make_unique<AdminServer>(config_.admin.listen, config_.admin.token, *queue_admin_);
  } catch (const std::exception& error) {
    spdlog::critical("event=start_failed error={}", quoted(error.what()));
    stop();
    return 1;
  }
  spdlog::info("event=started hostname={} loops={} listeners={} metrics={}",
               config_.server.hostname, workers_.size(), config_.listeners.size(),
               config_.metrics.listen);
  wait_for_signals();
  stop();
  return 0;
}

void Daemon::create_workers() {
  unsigned loops = config_.server.loops;
  if (loops == 0) loops = std::max(1u, std::thread::hardware_concurrency());
  const auto settings = delivery_settings_for(config_);
  const auto dns_cache = dns::make_cache();
  shaper_ = std::make_shared<Shaper>(ShapingSettings::from(config_), loops);
  for (unsigned i = 0; i < loops; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->inbound.context.loop = &worker->thread;
    worker->inbound.context.store = store_.get();
    worker->inbound.context.metrics = &metrics_;
    worker->inbound.context.deliver = [this](queue::MessageId id) { deliver(id); };
    worker->inbound.context.census = &census_;
    worker->engine = std::make_unique<DeliveryEngine>(
        worker->thread, *store_, metrics_, settings, dns_cache, shaper_,
        [this](queue::MessageId id) { deliver(id); }, census_);
    DeliveryEngine* engine = worker->engine.get();
    worker->inbound.context.resolver = [engine]() -> dns::Resolver& { return engine->resolver(); };
    worker->prober = std::make_unique<RecipientProber>(worker->thread.loop(), engine->settings(),
                                                       worker->inbound.context.resolver);
    worker->inbound.context.verifier = worker->prober.get();
    workers_.push_back(std::move(worker));
  }
  std::vector<InboundLoop*> inbound;
  for (auto& worker : workers_) inbound.push_back(&worker->inbound);
  listeners_ = std::make_unique<Listeners>(std::move(inbound), metrics_);
}

// Each message belongs to one loop's engine (by id), so that one thread owns its state.
Worker& Daemon::owner_of(queue::MessageId id) {
  return *workers_[id % workers_.size()];
}

void Daemon::deliver(queue::MessageId id) {
  DeliveryEngine* engine = owner_of(id).engine.get();
  owner_of(id).thread.post([engine, id] { engine->deliver_now(id); });
}

void Daemon::wait_for_signals() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  loop.data = this;
  uv_signal_t term, interrupt, hangup;
  for (uv_signal_t* handle : {&term, &interrupt, &hangup}) uv_signal_init(&loop, handle);
  auto on_stop = [](uv_signal_t* handle, int signum) {
    spdlog::info("event=stopping signal={}", signum == SIGTERM ? "TERM" : "INT");
    uv_stop(handle->loop);
  };
  uv_signal_start(&term, on_stop, SIGTERM);
  uv_signal_start(&interrupt, on_stop, SIGINT);
  uv_signal_start(
      &hangup, [](uv_signal_t* handle, int) { static_cast<Daemon*>(handle->loop->data)->reload(); },
      SIGHUP);
  const sigset_t handled = handled_signals();
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);
  // glibc keeps what its arenas freed: after a delivery round of a large queue (bodies and
  // envelopes loaded and dropped by several threads) about 65 MiB stayed resident above what
  // was in use. Handing free pages back now and then keeps the RSS at what is used.
  uv_timer_t trim;
  uv_timer_init(&loop, &trim);
  uv_timer_start(
      &trim, [](uv_timer_t*) { malloc_trim(0); }, kTrimIntervalMs, kTrimIntervalMs);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&trim), nullptr);
  for (uv_signal_t* handle : {&term, &interrupt, &hangup})
    uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
}

void Daemon::wait_for_connections(std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (listeners_->open_connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// Stop accepting, let transactions in flight finish until the deadline, then temp-fail the
// rest, stop delivery and the loops, and close the queue (which finishes its last batch).
void Daemon::stop() {
  stopping_background_ = true;
  if (schedule_loader_.joinable()) schedule_loader_.join();
  admin_server_.reset();  // changes still waiting are answered 503
  if (queue_admin_) queue_admin_->stop();
  listeners_->close_all();
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->thread.post([w] {
      w->inbound.context.shutting_down = true;
      auto connections = w->inbound.context.connections;  // a copy: begin_shutdown may close some
      for (auto* connection : connections) connection->begin_shutdown();
    });
  }
  wait_for_connections(config_.server.shutdown_timeout);
  if (listeners_->open_connections() > 0) {
    spdlog::warn("event=shutdown_deadline open_connections={}", listeners_->open_connections());
    for (auto& worker : workers_) {
      Worker* w = worker.get();
      w->thread.post([w] {
        auto connections = w->inbound.context.connections;
        for (auto* connection : connections) connection->force_shutdown();
      });
    }
    wait_for_connections(std::chrono::seconds(2));
  }
  for (auto& worker : workers_) {
    DeliveryEngine* engine = worker->engine.get();
    RecipientProber* prober = worker->prober.get();
    worker->thread.post([engine, prober] {
      prober->stop();
      engine->stop();
    });
  }
  store_->close();  // the last batch's completions still reach the running loops
  for (auto& worker : workers_) worker->thread.stop();
  metrics_.set_queue_gauges_source({});
  metrics_.set_store_gauges_source({});
  if (census_thread_.joinable()) census_thread_.join();
  workers_.clear();
  store_.reset();
  spdlog::info("event=stopped");
}

int run_daemon(const Config& config) {
  return Daemon(config).run();
}

}  // namespace relayq::mta
