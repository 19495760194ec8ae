// The daemon's life: start-up (queue, metrics, listeners, loops), signals, graceful stop.
#include "mta/daemon.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "inbound_connection.hpp"
#include "listen_socket.hpp"
#include "loop_thread.hpp"
#include "metrics/metrics.hpp"
#include "outbound_engine.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

namespace {

// Every reason a transaction can be refused, so that each series exists at zero.
constexpr const char* kRejectReasons[] = {
    "relay_denied",        "size",    "bad_data", "line_too_long",
    "too_many_recipients", "storage", "timeout"};

std::shared_ptr<ServerSessionConfig> session_config_for(const Config& config,
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
  return session;
}

// A listener's socket on one loop; the handle's data points back here.
struct ListenSocket {
  uv_tcp_t handle{};
  ListenerShared* listener = nullptr;
  InboundContext* context = nullptr;
};

// One loop thread with its inbound connections, its share of every listener, and the
// delivery of the messages it owns.
struct Worker {
  LoopThread thread;
  InboundContext context;
  std::vector<std::unique_ptr<ListenSocket>> sockets;
  std::unique_ptr<OutboundEngine> engine;
};

std::shared_ptr<const DeliverySettings> delivery_settings_for(const Config& config) {
  auto settings = std::make_shared<DeliverySettings>(DeliverySettings{
      .hostname = config.server.hostname,
      .router = Router(config),
      .retry = queue::RetryPolicies(config.retry,
                                    {config.retry_domains.begin(), config.retry_domains.end()}),
      .max_connections_per_destination = config.delivery.max_connections_per_destination,
      .client = nullptr,
      .resolver = {},
      .timeouts = {},
  });
  auto client = std::make_shared<ClientSessionConfig>();
  client->helo_name = config.server.hostname;
  settings->client = std::move(client);
  settings->resolver.servers = config.dns.servers;
  return settings;
}

class Daemon {
 public:
  explicit Daemon(const Config& config) : config_(config) {}

  int run() {
    ::signal(SIGPIPE, SIG_IGN);
    try {
      store_ = queue::Store::open({.path = config_.queue.path, .read_only = false});
    } catch (const std::exception& error) {
      spdlog::critical("cannot open the queue: {}", error.what());
      return 1;
    }
    create_workers();
    load_schedule();
    try {
      metrics_server_ =
          std::make_unique<metrics::MetricsServer>(config_.metrics.listen, metrics_.registry());
      open_listeners();
    } catch (const std::exception& error) {
      spdlog::critical("cannot start: {}", error.what());
      return 1;
    }
    for (auto& worker : workers_) {
      OutboundEngine* engine = worker->engine.get();
      worker->thread.start([engine] { engine->start(); });
    }
    spdlog::info("event=started hostname={} loops={} listeners={} metrics={}",
                 config_.server.hostname, workers_.size(), listeners_.size(),
                 config_.metrics.listen);
    wait_for_signal();
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
      worker->context.loop = &worker->thread;
      worker->context.store = store_.get();
      worker->context.metrics = &metrics_;
      worker->context.deliver = [this](queue::MessageId id) { deliver(id); };
      worker->engine =
          std::make_unique<OutboundEngine>(worker->thread, *store_, metrics_, settings, dns_cache,
                                           loops, [this](queue::MessageId id) { deliver(id); });
      workers_.push_back(std::move(worker));
    }
  }

  // Each message belongs to one loop's engine (by id), so that one thread owns its state.
  Worker& owner_of(queue::MessageId id) { return *workers_[id % workers_.size()]; }

  void deliver(queue::MessageId id) {
    OutboundEngine* engine = owner_of(id).engine.get();
    owner_of(id).thread.post([engine, id] { engine->deliver_now(id); });
  }

  // Finds every unfinished message again after a restart: the due index gives ids and times
  // only, so memory stays small however large the queue is and no body is read.
  void load_schedule() {
    const auto started = std::chrono::steady_clock::now();
    std::size_t entries = 0;
    store_->for_each_due([&](const queue::DueEntry& entry) {
      owner_of(entry.id).engine->add_due(entry);
      ++entries;
    });
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::info("event=queue_opened due_recipients={} load_ms={}", entries, elapsed.count());
  }

  void open_listeners() {
    for (const auto& listener : config_.listeners) {
      auto shared = std::make_unique<ListenerShared>();
      shared->name = listener.address;
      shared->max_connections = listener.max_connections;
      shared->session_config = session_config_for(config_, listener, *store_);
      shared->metrics = &metrics_;
      shared->received = &metrics_.messages_received(listener.address);
      for (const char* reason : kRejectReasons)
        metrics_.messages_rejected(listener.address, reason);
      for (auto& worker : workers_) {
        auto socket = std::make_unique<ListenSocket>();
        socket->listener = shared.get();
        socket->context = &worker->context;
        uv_tcp_init(worker->thread.loop(), &socket->handle);
        socket->handle.data = socket.get();
        uv_tcp_open(&socket->handle, open_listen_socket(listener.host, listener.port));
        const int rc =
            uv_listen(reinterpret_cast<uv_stream_t*>(&socket->handle), 1024,
                      [](uv_stream_t* stream, int status) {
                        if (status < 0) return;
                        auto* socket = static_cast<ListenSocket*>(stream->data);
                        InboundConnection::accept(stream, *socket->listener, *socket->context);
                      });
        if (rc != 0)
          throw std::runtime_error("listen " + listener.address + ": " + uv_strerror(rc));
        worker->sockets.push_back(std::move(socket));
      }
      spdlog::info("event=listening address={} mode=relay", listener.address);
      listeners_.push_back(std::move(shared));
    }
  }

  void wait_for_signal() {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_signal_t term, interrupt, hangup;
    for (uv_signal_t* handle : {&term, &interrupt, &hangup}) {
      uv_signal_init(&loop, handle);
      handle->data = &loop;
    }
    auto on_stop = [](uv_signal_t* handle, int signum) {
      spdlog::info("event=stopping signal={}", signum == SIGTERM ? "TERM" : "INT");
      uv_stop(static_cast<uv_loop_t*>(handle->data));
    };
    uv_signal_start(&term, on_stop, SIGTERM);
    uv_signal_start(&interrupt, on_stop, SIGINT);
    uv_signal_start(
        &hangup,
        [](uv_signal_t*, int) {
          spdlog::warn("event=reload_refused reason=\"configuration reload is not built yet\"");
        },
        SIGHUP);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (uv_signal_t* handle : {&term, &interrupt, &hangup})
      uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }

  std::size_t open_connections() const {
    std::size_t total = 0;
    for (const auto& listener : listeners_) total += listener->connections.load();
    return total;
  }

  // Stop accepting, let transactions in flight finish until the deadline, then temp-fail the
  // rest, stop the loops and close the queue (which finishes its last synced batch).
  void stop() {
    for (auto& worker : workers_) {
      Worker* w = worker.get();
      w->thread.post([w] {
        for (auto& socket : w->sockets)
          uv_close(reinterpret_cast<uv_handle_t*>(&socket->handle), nullptr);
        w->context.shutting_down = true;
        auto connections = w->context.connections;  // a copy: begin_shutdown may close some
        for (auto* connection : connections) connection->begin_shutdown();
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + config_.server.shutdown_timeout;
    while (open_connections() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (open_connections() > 0) {
      spdlog::warn("event=shutdown_deadline open_connections={}", open_connections());
      for (auto& worker : workers_) {
        Worker* w = worker.get();
        w->thread.post([w] {
          auto connections = w->context.connections;
          for (auto* connection : connections) connection->force_shutdown();
        });
      }
      const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (open_connections() > 0 && std::chrono::steady_clock::now() < grace)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& worker : workers_) {
      OutboundEngine* engine = worker->engine.get();
      worker->thread.post([engine] { engine->stop(); });
    }
    store_->close();  // the last batch's completions still reach the running loops
    for (auto& worker : workers_) worker->thread.stop();
    workers_.clear();
    store_.reset();
    spdlog::info("event=stopped");
  }

  const Config& config_;
  metrics::Metrics metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<queue::Store> store_;
  std::vector<std::unique_ptr<ListenerShared>> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

int run_daemon(const Config& config) {
  return Daemon(config).run();
}

}  // namespace relayq::mta
