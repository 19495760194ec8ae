// SIGHUP: reload() and the settings it leaves as they run. On the main thread (the signal loop
// of wait_for_signals()); each engine gets the new delivery settings as a task on its loop. A
// reload is all or nothing, except the restart-only settings, which keep their running values.
#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/settings.hpp"
#include "mta/common/log_format.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta {

namespace {

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

}  // namespace

// SIGHUP: the new file replaces the old one for everything a running daemon can change;
// a file that does not validate, or a listener that cannot bind, changes nothing.
void Daemon::reload() {
  Config fresh;
  try {
    fresh = load_config(config_.path);
  } catch (const ConfigError& error) {
    spdlog::error("event=reload_refused error={}", quoted(error.what()));
    return;
  }
  keep_restart_only_settings(config_, fresh);
  // Certificates, CA files and users are re-read on every reload; files that do not load
  // refuse it, and the running ones stay.
  InboundFiles files;
  std::shared_ptr<const DeliverySettings> settings;
  try {
    files = load_inbound_files(fresh);
    settings = delivery_settings_for(fresh);
  } catch (const ConfigError& error) {
    spdlog::error("event=reload_refused error={}", quoted(error.what()));
    return;
  }
  std::vector<std::string> opened;
  try {
    for (const auto& listener : fresh.listeners) {
      if (listeners_->is_open(listener.address)) continue;
      listeners_->open(listener, listener_settings_for(fresh, listener, *store_, files));
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
      listeners_->update(*kept, listener_settings_for(fresh, *kept, *store_, files));
    }
  }
  shaper_->configure(ShapingSettings::from(fresh));
  for (auto& worker : workers_) {
    DeliveryEngine* engine = worker->engine.get();
    worker->thread.post([engine, settings] { engine->update_settings(settings); });
  }
  config_ = std::move(fresh);
  spdlog::info("event=reloaded listeners={}", config_.listeners.size());
}

}  // namespace relayq::mta
