// The relayq command line: serve, check-config, version, inspect-queue, queue, dkim-record,
// check-dns, retry-plan.
#include <fmt/core.h>
#include <openssl/crypto.h>
#include <rocksdb/version.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <uv.h>
#include <CLI/CLI.hpp>

#include <toml++/toml.h>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/check_config_diff.hpp"
#include "cli/check_dns.hpp"
#include "cli/queue_command.hpp"
#include "cli/retry_plan_command.hpp"
#include "mta/cli/dns_records.hpp"
#include "mta/common/log_format.hpp"
#include "mta/config/config.hpp"
#include "mta/daemon/daemon.hpp"
#include "mta/daemon/dkim_keys.hpp"
#include "queue/inspect.hpp"
#include "queue/store.hpp"

namespace {

using relayq::mta::ConfigError;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Every SMTP connection holds a file descriptor. Shells, `make run` and many container
// runtimes start processes with a soft RLIMIT_NOFILE of 1024 and a much higher hard limit, and
// beyond the soft limit accept() fails and the client is dropped without a reply. Like nginx
// and Postfix, relayq raises its soft limit to the hard one at start, so that the default
// max_connections (10000) works without tuning ulimit. Raising the hard limit itself takes
// privileges (LimitNOFILE= in the systemd unit): when it is too low, say so once.
void raise_open_files_limit(const relayq::mta::Config& config) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // An unlimited hard limit is refused above fs.nr_open; 1M is its default.
    if (limit.rlim_max == RLIM_INFINITY) limit.rlim_cur = rlim_t{1} << 20;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      spdlog::info("event=open_files_limit raised_from={} to={}", before, limit.rlim_cur);
    } else {
      limit.rlim_cur = before;
    }
  }
  std::uint64_t wanted = 0;
  for (const auto& listener : config.listeners) wanted += listener.max_connections;
  // Connections are not the only files: the queue, outbound connections, DNS, HTTP.
  constexpr std::uint64_t kReserve = 256;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted + kReserve)
    spdlog::warn(
        "event=open_files_limit limit={} max_connections={} reason=\"connections beyond the "
        "limit are dropped; raise the hard limit (LimitNOFILE=, ulimit -Hn)\"",
        limit.rlim_cur, wanted);
}

// The daemon logs from its event loops (every accepted message, every delivery attempt), and
// a write to stderr can block for tens of milliseconds: a file on a filesystem whose journal is
// committing the queue's fsyncs, or a pipe that journald drains late. Every connection of that
// loop would wait with it, and the accept latency shows it. While a LogThread lives, lines go
// through a queue to its one writer thread instead, formatted and time-stamped where they are
// logged. A full queue makes the loggers wait, so no line is ever dropped.
class LogThread {
 public:
  static constexpr std::size_t kQueueLines = 8192;

  LogThread()
      : direct_(spdlog::default_logger()),
        pool_(std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1)) {
    auto logger = std::make_shared<spdlog::async_logger>(direct_->name(), direct_->sinks().begin(),
                                                         direct_->sinks().end(), pool_,
                                                         spdlog::async_overflow_policy::block);
    logger->set_level(direct_->level());
    logger->flush_on(direct_->flush_level());
    spdlog::set_default_logger(std::move(logger));  // takes `direct_`'s name in the registry
  }
  // Writes what the queue holds (the thread finishes it before it ends); later lines, from
  // static destructors say, are written directly again.
  ~LogThread() {
    pool_.reset();
    spdlog::set_default_logger(direct_);
  }
  LogThread(const LogThread&) = delete;
  LogThread& operator=(const LogThread&) = delete;

 private:
  std::shared_ptr<spdlog::logger> direct_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
};

int serve(const std::string& path) {
  relayq::mta::block_daemon_signals();  // before the log thread starts
  relayq::mta::Config config;
  try {
    config = relayq::mta::load_config(path);
  } catch (const ConfigError& error) {
    spdlog::critical("{}", error.what());
    return kExitUsage;
  }
  relayq::mta::setup_logging(
      config.log.format == "json" ? relayq::mta::LogFormat::json : relayq::mta::LogFormat::logfmt,
      spdlog::level::from_str(config.log.level));
  raise_open_files_limit(config);
  const LogThread log_thread;
  return relayq::mta::run_daemon(config);
}

int check_config(const std::string& path) {
  try {
    relayq::mta::load_config(path);
  } catch (const ConfigError& error) {
    std::cerr << error.what() << "\n";
    return kExitUsage;
  }
  std::cout << path << ": ok\n";
  return kExitOk;
}

// The TXT record of each [[dkim.sign]] key, as a zone file line.
int dkim_record(const std::string& path) {
  try {
    const auto config = relayq::mta::load_config(path);
    for (const auto& signer : relayq::mta::load_dkim_signers(config)) {
      fmt::print("{}\n", relayq::mta::dkim_record(signer->selector(), signer->domain(),
                                                  signer->dns_record()));
    }
  } catch (const ConfigError& error) {
    std::cerr << error.what() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

int version() {
  fmt::print("relayq {}\n", RELAYQ_VERSION);
  fmt::print("  libuv {}\n", uv_version_string());
  fmt::print("  RocksDB {}.{}.{}\n", ROCKSDB_MAJOR, ROCKSDB_MINOR, ROCKSDB_PATCH);
  fmt::print("  {}\n", OpenSSL_version(OPENSSL_VERSION));
  fmt::print("  toml++ {}.{}.{}\n", TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH);
  fmt::print("  spdlog {}.{}.{}\n", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH);
  fmt::print("  fmt {}.{}.{}\n", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100);
  fmt::print("  nlohmann-json {}.{}.{}\n", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
             NLOHMANN_JSON_VERSION_PATCH);
  return kExitOk;
}

// Reads a queue directory that no daemon has open (after a crash, or for a test): one JSON
// line per message, or one message's body.
int inspect_queue(const std::string& path, const std::string& id_text, bool body) {
  spdlog::set_level(spdlog::level::warn);  // stdout is for the data, stderr for trouble only
  std::unique_ptr<relayq::queue::Store> store;
  try {
    store = relayq::queue::Store::open({.path = path, .read_only = true});
  } catch (const std::exception& error) {
    std::cerr << "relayq: " << error.what() << "\n";
    return kExitFailure;
  }
  if (id_text.empty()) {
    store->for_each_envelope([](const relayq::queue::Envelope& envelope) {
      std::cout << relayq::queue::envelope_to_json_line(envelope) << "\n";
    });
    return kExitOk;
  }
  const auto id = relayq::queue::parse_id(id_text);
  if (!id) {
    std::cerr << "relayq: not a message id: " << id_text << "\n";
    return kExitUsage;
  }
  if (body) {
    const auto text = store->load_body(*id);
    if (!text) return std::cerr << "relayq: no such message: " << id_text << "\n", kExitFailure;
    std::cout.write(text->data(), static_cast<std::streamsize>(text->size()));
    return kExitOk;
  }
  const auto envelope = store->load_envelope(*id);
  if (!envelope) return std::cerr << "relayq: no such message: " << id_text << "\n", kExitFailure;
  std::cout << relayq::queue::envelope_to_json_line(*envelope) << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"relayq: an SMTP relay with a durable queue"};
  app.require_subcommand(1);
  std::string config_path;

  auto* serve_cmd = app.add_subcommand("serve", "Run the daemon in the foreground");
  serve_cmd->add_option("-c,--config", config_path, "Config file (TOML)")->required();

  std::string old_config_path;
  auto* check_cmd = app.add_subcommand("check-config", "Validate a config file");
  check_cmd->add_option("-c,--config", config_path, "Config file (TOML)")->required();
  check_cmd->add_option("--diff-against", old_config_path,
                        "An older config: validate it too and show how the retry schedule changes");

  auto* version_cmd = app.add_subcommand("version", "Print versions");

  auto* dkim_record_cmd = app.add_subcommand(
      "dkim-record", "Print the DNS TXT record to publish for each [[dkim.sign]] key");
  dkim_record_cmd->add_option("-c,--config", config_path, "Config file (TOML)")->required();

  std::string public_ip;
  auto* check_dns_cmd = app.add_subcommand(
      "check-dns",
      "Check this server's DNS: host name, A/AAAA, PTR, and the MX, SPF, DKIM and DMARC records "
      "of its domains");
  check_dns_cmd->add_option("-c,--config", config_path, "Config file (TOML)")->required();
  check_dns_cmd->add_option("--ip", public_ip,
                            "This server's public address (for the PTR and SPF checks)");

  std::string retry_domain;
  bool retry_json = false;
  auto* retry_plan_cmd = app.add_subcommand(
      "retry-plan",
      "Print the attempt times the [retry] schedule gives, the delay warning and the bounce");
  retry_plan_cmd->add_option("-c,--config", config_path, "Config file (TOML)")->required();
  retry_plan_cmd->add_option("--domain", retry_domain,
                             "A destination domain: its [retry.domains.\"D\"] when there is one");
  retry_plan_cmd->add_flag("--json", retry_json, "One JSON object");

  std::string queue_path, id_text;
  bool body = false;
  auto* inspect_cmd = app.add_subcommand(
      "inspect-queue", "Read a queue directory that no daemon has open (JSON lines)");
  inspect_cmd->add_option("--path", queue_path, "The queue directory")->required();
  inspect_cmd->add_option("--id", id_text, "Only this message");
  inspect_cmd->add_flag("--body", body, "Print the message body (with --id)");

  relayq::mta::QueueCli queue_cli(app);

  relayq::mta::setup_logging(relayq::mta::LogFormat::logfmt, spdlog::level::info);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return kExitUsage;
  }
  if (*serve_cmd) return serve(config_path);
  if (*check_cmd && !old_config_path.empty())
    return relayq::mta::check_config_diff(config_path, old_config_path);
  if (*check_cmd) return check_config(config_path);
  if (*version_cmd) return version();
  if (*dkim_record_cmd) return dkim_record(config_path);
  if (*check_dns_cmd) return relayq::mta::check_dns(config_path, public_ip);
  if (*retry_plan_cmd) return relayq::mta::retry_plan(config_path, retry_domain, retry_json);
  if (*inspect_cmd) return inspect_queue(queue_path, id_text, body);
  if (queue_cli.selected()) return queue_cli.run();
  return kExitUsage;
}
