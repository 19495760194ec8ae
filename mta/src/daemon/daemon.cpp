// The daemon's life: start-up (queue, metrics, loops, listeners), signals, reload, stop.
#include "mta/daemon/daemon.hpp"

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "mta/daemon/daemon_queue_admin.hpp"
#include "mta/inbound/listeners.hpp"
#include "mta/common/log_format.hpp"
#include "metrics/metrics.hpp"
#include "mta/admin/server.hpp"
#include "queue/clock.hpp"
#include "queue/store.hpp"
#include "daemon/worker.hpp"

namespace relayq::mta {

namespace {

std::shared_ptr<const ServerSessionConfig> session_config_for(const Config& config,
                                                              const ListenerConfig& listener,
                                                              queue::Store& store) {
  auto session = std::make_shared<ServerSessionConfig>();
  session->hostname = config.server.hostname;
  session->listener_name = listener.address;
  session->max_message_size = listener.max_message_size;
  session->max_recipients = listener.max_recipients;
  session->command_timeout = listener.command_timeout;
  session->data_timeout = listener.data_timeout;
  session->min_data_rate = listener.min_data_rate;
  session->relay =
      std::make_shared<policy::RelayRules>(config.relay.networks, config.relay.domains);
  session->next_id = [&store] { return store.next_id(); };
  session->wall_clock_ms = queue::wall_clock_ms;
  return session;
}

std::shared_ptr<const DeliverySettings> delivery_settings_for(const Config& config) {
  auto client = std::make_shared<ClientSessionConfig>();
  client->helo_name = config.server.hostname;
  auto settings = std::make_shared<DeliverySettings>(DeliverySettings{
      .hostname = config.server.hostname,
      .router = Router(config),
      .retry = queue::RetryPolicies(config.retry,
                                    {config.retry_domains.begin(), config.retry_domains.end()}),
      .max_connections_per_destination = config.delivery.max_connections_per_destination,
      .client = std::move(client),
      .resolver = {},
      .timeouts = {},
  });
  settings->resolver.servers = config.dns.servers;
  return settings;
}

// Settings a running daemon cannot take over: they name resources it holds open.
void keep_restart_only_settings(const Config& running, Config& fresh) {
  const auto keep = [&](const auto& now, auto& next, const char* key) {
    if (now == next) return;
    spdlog::warn("event=reload_partial key={} reason=\"needs a restart\"", key);
    next = now;
  };
  keep(running.queue.path, fresh.queue.path, "queue.path");
  keep(running.metrics.listen, fresh.metrics.listen, "metrics.listen");
  keep(running.admin.listen, fresh.admin.listen, "admin.listen");
  keep(running.server.loops, fresh.server.loops, "server.loops");
}

// How often freed heap memory is handed back to the system (see wait_for_signals()).
constexpr std::uint64_t kTrimIntervalMs = 10'000;

class Daemon {
 public:
  explicit Daemon(Config config) : config_(std::move(config)) {}
  // A start that failed half-way leaves the background readers running.
  ~Daemon() {
    stopping_background_ = true;
    if (schedule_loader_.joinable()) schedule_loader_.join();
    if (census_thread_.joinable()) census_thread_.join();
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int run() {
    ::signal(SIGPIPE, SIG_IGN);
    try {
      store_ = queue::Store::open({.path = config_.queue.path, .read_only = false});
    } catch (const std::exception& error) {
      spdlog::critical("event=start_failed error={}", quoted(error.what()));
      return 1;
    }
    create_workers();
    start_metrics_sources();
    try {
      metrics_server_ =
          std::make_unique<metrics::MetricsServer>(config_.metrics.listen, metrics_.registry());
      for (const auto& listener : config_.listeners)
        listeners_->open(listener, session_config_for(config_, listener, *store_));
    } catch (const std::exception& error) {
      spdlog::critical("event=start_failed error={}", quoted(error.what()));
      return 1;
    }
    for (auto& worker : workers_) {
      OutboundEngine* engine = worker->engine.get();
      worker->thread.start([engine] { engine->start(); });
    }
    schedule_loader_ = std::thread([this] { load_schedule(); });
    // Last, so that its /healthz answers only once the relay takes mail.
    queue_admin_ = std::make_unique<DaemonQueueAdmin>(
        *store_,
        [this](queue::MessageId id, OutboundEngine::AdminAction action, QueueAdmin::Done done) {
          OutboundEngine* engine = owner_of(id).engine.get();
          owner_of(id).thread.post(
              [engine, id, action, done = std::move(done)] { engine->admin(id, action, done); });
        });
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

 private:
  void create_workers() {
    unsigned loops = config_.server.loops;
    if (loops == 0) loops = std::max(1u, std::thread::hardware_concurrency());
    const auto settings = delivery_settings_for(config_);
    const auto dns_cache = dns::make_cache();
    for (unsigned i = 0; i < loops; ++i) {
      auto worker = std::make_unique<Worker>();
      worker->inbound.context.loop = &worker->thread;
      worker->inbound.context.store = store_.get();
      worker->inbound.context.metrics = &metrics_;
      worker->inbound.context.deliver = [this](queue::MessageId id) { deliver(id); };
      worker->inbound.context.census = &census_;
      worker->engine = std::make_unique<OutboundEngine>(
          worker->thread, *store_, metrics_, settings, dns_cache, loops,
          [this](queue::MessageId id) { deliver(id); }, census_);
      workers_.push_back(std::move(worker));
    }
    std::vector<InboundLoop*> inbound;
    for (auto& worker : workers_) inbound.push_back(&worker->inbound);
    listeners_ = std::make_unique<Listeners>(std::move(inbound), metrics_);
  }

  // Each message belongs to one loop's engine (by id), so that one thread owns its state.
  Worker& owner_of(queue::MessageId id) { return *workers_[id % workers_.size()]; }

  void deliver(queue::MessageId id) {
    OutboundEngine* engine = owner_of(id).engine.get();
    owner_of(id).thread.post([engine, id] { engine->deliver_now(id); });
  }

  // Finds every unfinished message again after a restart, in the background once the relay
  // takes mail, so that a large queue does not hold up new mail. The due index gives ids and
  // times only, so memory stays small however large the queue is and no body is read. It is
  // read as it was when the load began: what changes meanwhile reaches the engines directly,
  // and an entry that no longer holds by the time it is used is dropped by the engine.
  void load_schedule() {
    const auto started = std::chrono::steady_clock::now();
    // Entries go to their loop in batches: one task per batch, not per entry.
    constexpr std::size_t kBatch = 4096;
    std::vector<std::vector<queue::DueEntry>> batches(workers_.size());
    const auto hand_over = [this, &batches](std::size_t loop) {
      OutboundEngine* engine = workers_[loop]->engine.get();
      workers_[loop]->thread.post(
          [engine, batch = std::move(batches[loop])] { engine->add_due(batch); });
      batches[loop] = {};
      batches[loop].reserve(kBatch);
    };
    std::size_t entries = 0;
    const bool complete = store_->for_each_due_while([&](const queue::DueEntry& entry) {
      if (stopping_background_.load(std::memory_order_relaxed)) return false;
      const std::size_t loop = entry.id % workers_.size();
      batches[loop].push_back(entry);
      ++entries;
      if (batches[loop].size() >= kBatch) hand_over(loop);
      return true;
    });
    if (stopping_background_.load()) return;
    for (std::size_t loop = 0; loop < batches.size(); ++loop) {
      if (!batches[loop].empty()) hand_over(loop);
    }
    if (!complete) {
      spdlog::error("event=queue_load_incomplete due_recipients={}", entries);
      return;
    }
    // Each loop runs its tasks in order: once every loop has run this one, every entry is in
    // its engine's schedule.
    auto loops_left = std::make_shared<std::atomic<std::size_t>>(workers_.size());
    for (auto& worker : workers_) {
      worker->thread.post([loops_left, entries, started] {
        if (loops_left->fetch_sub(1) != 1) return;
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        spdlog::info("event=queue_loaded due_recipients={} load_ms={}", entries, elapsed.count());
      });
    }
  }

  // The gauges Prometheus reads at each scrape: the census (counted once in the background at
  // start, then kept current by every change) and RocksDB's own figures.
  void start_metrics_sources() {
    census_thread_ = std::thread([this] {
      const auto started = std::chrono::steady_clock::now();
      const auto count = store_->count_messages(stopping_background_);
      if (!count) return;
      census_.messages.fetch_add(static_cast<std::int64_t>(count->messages));
      census_.held.fetch_add(static_cast<std::int64_t>(count->held));
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
      spdlog::info("event=queue_counted messages={} held={} count_ms={}", count->messages,
                   count->held, elapsed.count());
    });
    metrics_.set_queue_gauges_source([this] {
      const auto messages = std::max<std::int64_t>(0, census_.messages.load());
      const auto held = std::clamp<std::int64_t>(census_.held.load(), 0, messages);
      const auto active = std::clamp<std::int64_t>(census_.active.load(), 0, messages - held);
      metrics::QueueGauges gauges{.ready = static_cast<std::uint64_t>(active),
                                  .scheduled = static_cast<std::uint64_t>(messages - held - active),
                                  .held = static_cast<std::uint64_t>(held),
                                  .oldest_message_age_seconds = 0};
      if (const auto oldest = store_->oldest_id()) {
        const std::int64_t age_ms = queue::wall_clock_ms() - queue::id_time_ms(*oldest);
        gauges.oldest_message_age_seconds = std::max<double>(0, static_cast<double>(age_ms) / 1000);
      }
      return gauges;
    });
    metrics_.set_store_gauges_source([store = store_.get()] {
      const queue::StoreGauges g = store->gauges();
      return metrics::StoreGauges{.size_bytes = g.size_bytes,
                                  .pending_compaction_bytes = g.pending_compaction_bytes,
                                  .write_stall = g.write_stall,
                                  .stall_micros_total = g.stall_micros_total};
    });
  }

  // SIGHUP: the new file replaces the old one for everything a running daemon can change;
  // a file that does not validate, or a listener that cannot bind, changes nothing.
  void reload() {
    Config fresh;
    try {
      fresh = load_config(config_.path);
    } catch (const ConfigError& error) {
      spdlog::error("event=reload_refused error={}", quoted(error.what()));
      return;
    }
    keep_restart_only_settings(config_, fresh);
    std::vector<std::string> opened;
    try {
      for (const auto& listener : fresh.listeners) {
        if (listeners_->is_open(listener.address)) continue;
        listeners_->open(listener, session_config_for(fresh, listener, *store_));
        opened.push_back(listener.address);
      }
    } catch (const std::exception& error) {
      for (const auto& address : opened) listeners_->close(address);
      spdlog::error("event=reload_refused error={}", quoted(error.what()));
      return;
    }
    for (const auto& address : listeners_->addresses()) {
      const auto kept = std::find_if(fresh.listeners.begin(), fresh.listeners.end(),
                                     [&](const auto& l) { return l.address == address; });
      if (kept == fresh.listeners.end()) {
        listeners_->close(address);
      } else if (std::find(opened.begin(), opened.end(), address) == opened.end()) {
        listeners_->update(*kept, session_config_for(fresh, *kept, *store_));
      }
    }
    const auto settings = delivery_settings_for(fresh);
    for (auto& worker : workers_) {
      OutboundEngine* engine = worker->engine.get();
      worker->thread.post([engine, settings] { engine->update_settings(settings); });
    }
    config_ = std::move(fresh);
    spdlog::info("event=reloaded listeners={}", config_.listeners.size());
  }

  void wait_for_signals() {
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
        &hangup,
        [](uv_signal_t* handle, int) { static_cast<Daemon*>(handle->loop->data)->reload(); },
        SIGHUP);
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

  void wait_for_connections(std::chrono::steady_clock::duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (listeners_->open_connections() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // Stop accepting, let transactions in flight finish until the deadline, then temp-fail the
  // rest, stop delivery and the loops, and close the queue (which finishes its last batch).
  void stop() {
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
      OutboundEngine* engine = worker->engine.get();
      worker->thread.post([engine] { engine->stop(); });
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

  Config config_;
  metrics::Metrics metrics_;
  QueueCensus census_;
  std::thread census_thread_;
  std::thread schedule_loader_;  // reads the due index once, after start
  // Cuts the census and the schedule loader short at stop.
  std::atomic<bool> stopping_background_{false};
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<queue::Store> store_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Listeners> listeners_;  // made with the loops
  std::unique_ptr<DaemonQueueAdmin> queue_admin_;
  std::unique_ptr<AdminServer> admin_server_;
};

}  // namespace

int run_daemon(const Config& config) {
  return Daemon(config).run();
}

}  // namespace relayq::mta
