// `relayq queue ...`: its options, the admin address and token, the requests and their output.
#include "cli/queue_command.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>

#include "mta/admin/json.hpp"
#include "mta/cli/queue_text.hpp"
#include "mta/config/config.hpp"
#include "queue/clock.hpp"
#include "queue/message.hpp"

namespace relayq::mta {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr auto kDefaultAdmin = "127.0.0.1:8025";
constexpr auto kTokenVariable = "RELAYQ_ADMIN_TOKEN";

int complain(int code, const std::string& message) {
  std::cerr << "relayq: " << message << "\n";
  return code;
}

struct Endpoint {
  std::string address;  // as given, for messages
  HostPort host_port;
  std::string token;
};

// One daemon's admin API. Every failure is told on stderr and turned into an exit code.
class AdminClient {
 public:
  explicit AdminClient(const Endpoint& endpoint)
      : address_(endpoint.address), client_(endpoint.host_port.host, endpoint.host_port.port) {
    client_.set_connection_timeout(std::chrono::seconds(5));
    // Longer than the daemon's own 30 s wait for a change, and room for stats over a big queue.
    client_.set_read_timeout(std::chrono::seconds(120));
    client_.set_keep_alive(false);
    if (!endpoint.token.empty()) client_.set_bearer_token_auth(endpoint.token);
  }

  // The whole body of a 200 reply into `body`.
  int call(const std::string& method, const std::string& path, std::string& body) {
    auto result = method == "GET"    ? client_.Get(path)
                  : method == "POST" ? client_.Post(path)
                                     : client_.Delete(path);
    if (!result) return unreachable(result.error());
    if (result->status != 200) return refused(result->status, result->body);
    body = std::move(result->body);
    return kExitOk;
  }

  // GET, handing each piece of a 200 body to `receive` as it arrives; `receive` returns false
  // to stop, after saying why.
  int stream(const std::string& path,
             const std::function<bool(const char*, std::size_t)>& receive) {
    int status = 0;
    std::string error_body;
    bool stopped = false;
    auto result = client_.Get(
        path,
        [&](const httplib::Response& response) {
          status = response.status;
          return true;
        },
        [&](const char* data, std::size_t size) {
          if (status != 200) {
            error_body.append(data, size);
            return true;
          }
          stopped = !receive(data, size);
          return !stopped;
        });
    if (stopped) return kExitFailure;
    if (!result && status == 200) {
      return complain(kExitFailure, "the listing from " + address_ + " was cut short (" +
                                        httplib::to_string(result.error()) + ")");
    }
    if (!result) return unreachable(result.error());
    if (status != 200) return refused(status, error_body);
    return kExitOk;
  }

 private:
  int unreachable(httplib::Error error) const {
    const bool no_connection =
        error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout;
    return complain(kExitFailure, "cannot reach the admin API at " + address_ + ": " +
                                      (no_connection ? "no connection (is relayq running?)"
                                                     : httplib::to_string(error)));
  }

  // A reply other than 200: the daemon's {"error"} said on stderr.
  int refused(int status, const std::string& body) const {
    std::string message = fmt::format("HTTP {} from {}", status, address_);
    const auto json = Json::parse(body, nullptr, false);
    if (json.is_object() && json.contains("error") && json["error"].is_string()) {
      message = json["error"].get<std::string>();
    }
    if (status == 401) {
      message += " (set admin.token in the config or " + std::string(kTokenVariable) + ")";
    }
    return complain(status == 400 ? kExitUsage : kExitFailure, message);
  }

  std::string address_;
  httplib::Client client_;
};

// The id in its canonical form, or nullopt after saying it is not one.
std::optional<std::string> checked_id(const std::string& text) {
  const auto id = queue::parse_id(text);
  if (!id) {
    complain(kExitUsage, "not a message id: " + text + " (16 hex digits)");
    return std::nullopt;
  }
  return queue::format_id(*id);
}

// Prints a JSON object as received, or through `render` for people.
int print_object(const std::string& body, bool json,
                 const std::function<std::string(const Json&)>& render) {
  if (json) {
    std::fwrite(body.data(), 1, body.size(), stdout);
    return kExitOk;
  }
  const auto object = Json::parse(body, nullptr, false);
  if (!object.is_object()) return complain(kExitFailure, "the admin API sent something not JSON");
  try {
    std::fputs(render(object).c_str(), stdout);
  } catch (const nlohmann::json::exception& error) {
    return complain(kExitFailure,
                    std::string("unexpected reply from the admin API: ") + error.what());
  }
  return kExitOk;
}

int list(AdminClient& admin, bool json) {
  if (json) {
    // Passed through as it arrives: a million lines never sit in memory.
    return admin.stream("/v1/queue", [](const char* data, std::size_t size) {
      if (std::fwrite(data, 1, size, stdout) == size) return true;
      complain(kExitFailure, "cannot write to stdout");
      return false;
    });
  }
  const auto now = queue::wall_clock_ms();
  std::string partial;
  std::uint64_t messages = 0;
  std::uint64_t held = 0;
  const int code = admin.stream("/v1/queue", [&](const char* data, std::size_t size) {
    partial.append(data, size);
    std::size_t start = 0;
    for (auto end = partial.find('\n'); end != std::string::npos;
         start = end + 1, end = partial.find('\n', start)) {
      const auto line =
          Json::parse(partial.begin() + static_cast<std::ptrdiff_t>(start),
                      partial.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
      std::string row;
      try {
        if (line.is_object()) row = list_row(line, now);
      } catch (const nlohmann::json::exception&) {
        // A field of the wrong type: told below, as a line that is not JSON is.
      }
      if (row.empty()) {
        complain(kExitFailure, "unexpected line from the admin API: " +
                                   partial.substr(start, std::min<std::size_t>(end - start, 200)));
        return false;
      }
      if (messages++ == 0) std::fputs(list_header().c_str(), stdout);
      held += line.value("held", false);
      std::fputs(row.c_str(), stdout);
    }
    partial.erase(0, start);
    return true;
  });
  if (code != kExitOk) return code;
  if (messages == 0) {
    std::puts("queue is empty");
  } else {
    fmt::print("{} message{}, {} held\n", messages, messages == 1 ? "" : "s", held);
  }
  return kExitOk;
}

int show(AdminClient& admin, const std::string& id, bool json) {
  std::string body;
  if (const int code = admin.call("GET", "/v1/queue/" + id, body); code != kExitOk) return code;
  return print_object(
      body, json, [](const Json& message) { return show_text(message, queue::wall_clock_ms()); });
}

int stats(AdminClient& admin, bool json) {
  std::string body;
  if (const int code = admin.call("GET", "/v1/stats", body); code != kExitOk) return code;
  return print_object(body, json, stats_text);
}

// hold, release, retry, delete: "ID: held".
int change(AdminClient& admin, const std::string& method, const std::string& path,
           const std::string& id) {
  std::string body;
  if (const int code = admin.call(method, path, body); code != kExitOk) return code;
  const auto reply = Json::parse(body, nullptr, false);
  fmt::print("{}: {}\n", id, reply.is_object() ? reply.value("result", "done") : "done");
  return kExitOk;
}

int retry_all(AdminClient& admin) {
  std::string body;
  if (const int code = admin.call("POST", "/v1/queue/retry", body); code != kExitOk) return code;
  const auto reply = Json::parse(body, nullptr, false);
  const auto count = reply.is_object() ? reply.value("retried", std::uint64_t{0}) : 0;
  fmt::print("{} message{} due now\n", count, count == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace

QueueCli::QueueCli(CLI::App& app) {
  queue_ = app.add_subcommand("queue", "Look at and change the running daemon's queue");
  queue_->require_subcommand(1);
  const auto command = [&](const char* name, const char* what) {
    auto* sub = queue_->add_subcommand(name, what);
    sub->add_option("--admin", admin_,
                    "Admin API HOST:PORT (default: the config's admin.listen, else " +
                        std::string(kDefaultAdmin) + ")");
    sub->add_option("-c,--config", config_path_, "Config file (admin.listen, admin.token)");
    return sub;
  };
  const auto json_flag = [&](CLI::App* sub) { sub->add_flag("--json", json_, "JSON output"); };
  const auto id_option = [&](CLI::App* sub) {
    return sub->add_option("id", id_, "Message id (16 hex digits)");
  };
  list_ = command("list", "One line per queued message");
  json_flag(list_);
  show_ = command("show", "One message: envelope, recipients, every attempt");
  id_option(show_)->required();
  json_flag(show_);
  delete_ = command("delete", "Remove a message from the queue, without a DSN");
  id_option(delete_)->required();
  hold_ = command("hold", "Deliver nothing of a message until it is released");
  id_option(hold_)->required();
  release_ = command("release", "Put a held message back on its schedule");
  id_option(release_)->required();
  retry_ = command("retry", "Make a message (or with --all every message not held) due now");
  id_option(retry_);
  retry_->add_flag("--all", all_, "Every message that is not held");
  stats_ = command("stats", "Counts by state and destination domain, oldest age");
  json_flag(stats_);
}

bool QueueCli::selected() const {
  return queue_->parsed();
}

int QueueCli::run() {
  if (*retry_ && id_.empty() == !all_) {
    return complain(kExitUsage, "queue retry: give a message ID or --all");
  }
  std::optional<std::string> id;
  if (!id_.empty() && !(id = checked_id(id_))) return kExitUsage;

  Endpoint endpoint;
  endpoint.address = admin_;
  if (!config_path_.empty()) {
    try {
      const auto config = load_config(config_path_);
      if (endpoint.address.empty()) endpoint.address = config.admin.listen;
      endpoint.token = config.admin.token;
    } catch (const ConfigError& error) {
      std::cerr << error.what() << "\n";
      return kExitUsage;
    }
  }
  if (endpoint.address.empty()) endpoint.address = kDefaultAdmin;
  // The environment wins over the file: a token can be given without editing the config.
  if (const char* token = std::getenv(kTokenVariable); token != nullptr && *token != '\0') {
    endpoint.token = token;
  }
  try {
    endpoint.host_port = parse_host_port(endpoint.address);
  } catch (const std::invalid_argument& error) {
    return complain(kExitUsage, "--admin " + endpoint.address + ": " + error.what());
  }

  AdminClient admin(endpoint);
  int code = kExitUsage;
  if (*list_) code = list(admin, json_);
  if (*show_) code = show(admin, *id, json_);
  if (*stats_) code = stats(admin, json_);
  if (*hold_) code = change(admin, "POST", "/v1/queue/" + *id + "/hold", *id);
  if (*release_) code = change(admin, "POST", "/v1/queue/" + *id + "/release", *id);
  if (*delete_) code = change(admin, "DELETE", "/v1/queue/" + *id, *id);
  if (*retry_) {
    code = all_ ? retry_all(admin) : change(admin, "POST", "/v1/queue/" + *id + "/retry", *id);
  }
  std::fflush(stdout);
  return code;
}

}  // namespace relayq::mta
