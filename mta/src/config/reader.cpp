// Reading and validating the relayq TOML config (shared/CONTRACT.md, "Config file (TOML)").
#include "mta/config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace relayq::mta {

namespace {

using namespace std::string_view_literals;

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::uint32_t line_of(const toml::node& node) {
  return node.source().begin.line;
}
std::uint32_t line_of(const toml::key& key) {
  return key.source().begin.line;
}

// --- Value conversions. They throw std::invalid_argument saying what is wrong; Section adds the
// file, line and key.

std::string to_string(const toml::node& node) {
  if (const auto* value = node.as_string()) return value->get();
  throw std::invalid_argument("must be a string");
}

std::string to_nonempty_string(const toml::node& node) {
  auto text = to_string(node);
  if (text.empty()) throw std::invalid_argument("must not be empty");
  return text;
}

bool to_bool(const toml::node& node) {
  if (const auto* value = node.as_boolean()) return value->get();
  throw std::invalid_argument("must be true or false");
}

std::int64_t to_integer(const toml::node& node, std::int64_t min, std::int64_t max) {
  const auto* value = node.as_integer();
  if (value == nullptr) throw std::invalid_argument("must be an integer");
  if (value->get() < min || value->get() > max) {
    throw std::invalid_argument("must be between " + std::to_string(min) + " and " +
                                std::to_string(max));
  }
  return value->get();
}

// Integers are accepted too: "factor = 2" is as clear as "factor = 2.0".
double to_number(const toml::node& node, double min, double max) {
  if (!node.is_number()) throw std::invalid_argument("must be a number");
  const double value = node.is_integer() ? static_cast<double>(node.as_integer()->get())
                                         : node.as_floating_point()->get();
  // Written so that nan fails too.
  if (!(value >= min && value <= max)) {
    std::ostringstream range;
    range << "must be between " << min << " and " << max;
    throw std::invalid_argument(range.str());
  }
  return value;
}

std::string to_choice(const toml::node& node, std::initializer_list<std::string_view> choices) {
  auto text = to_string(node);
  if (std::find(choices.begin(), choices.end(), text) != choices.end()) return text;
  std::string list;
  for (const auto choice : choices) {
    list += list.empty() ? "" : choice == *(choices.end() - 1) ? " or " : ", ";
    list += quoted(choice);
  }
  throw std::invalid_argument("must be " + list + ", not " + quoted(text));
}

// Bytes as an integer, or a string with a unit.
std::uint64_t to_size(const toml::node& node, std::uint64_t min) {
  std::uint64_t bytes = 0;
  if (const auto* value = node.as_integer()) {
    if (value->get() < 0) throw std::invalid_argument("must not be negative");
    bytes = static_cast<std::uint64_t>(value->get());
  } else if (const auto* text = node.as_string()) {
    bytes = parse_size(text->get());
  } else {
    throw std::invalid_argument("must be a size: bytes, or a string like \"25MiB\"");
  }
  if (bytes < min) throw std::invalid_argument("must be at least " + std::to_string(min));
  return bytes;
}

// Seconds as an integer, or a string with units.
Duration to_duration(const toml::node& node, bool may_be_zero) {
  Duration duration{};
  if (const auto* value = node.as_integer()) {
    if (value->get() < 0) throw std::invalid_argument("must not be negative");
    if (value->get() > std::numeric_limits<Duration::rep>::max() / 1000) {
      throw std::invalid_argument("is too large");
    }
    duration = std::chrono::seconds(value->get());
  } else if (const auto* text = node.as_string()) {
    duration = parse_duration(text->get());
  } else {
    throw std::invalid_argument("must be a duration: seconds, or a string like \"5m\"");
  }
  if (!may_be_zero && duration == Duration::zero()) throw std::invalid_argument("must not be 0");
  return duration;
}

// Letters, digits, '-' and '.', in non-empty labels; lower-cased. These names end up in SMTP
// replies and headers, so nothing else may get through.
std::string to_domain(std::string_view text) {
  std::string domain(text);
  std::transform(domain.begin(), domain.end(), domain.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  const bool chars_ok = std::all_of(domain.begin(), domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if (domain.empty() || !chars_ok || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string::npos) {
    throw std::invalid_argument("not a domain name: " + quoted(text));
  }
  return domain;
}

// An address to listen on or query: the host must be an IP address, not a name.
HostPort to_ip_port(const toml::node& node) {
  auto address = parse_host_port(to_string(node));
  if (!policy::IpAddress::parse(address.host)) {
    throw std::invalid_argument("not an IP address: " + quoted(address.host) +
                                " (expected ip:port or [ipv6]:port)");
  }
  return address;
}

// 127.0.0.0/8 or ::1 (IPv4-mapped loopback included): reachable from this host only.
bool is_loopback(const std::string& ip_port) {
  const auto ip = policy::IpAddress::parse(parse_host_port(ip_port).host);
  return ip && (policy::Cidr::parse("127.0.0.0/8")->contains(*ip) ||
                policy::Cidr::parse("::1/128")->contains(*ip));
}

// --- One TOML table of the file.

// Hands out the values of one table, records their lines in Config::lines, and reports the keys
// nobody asked for as unknown.
class Section {
 public:
  // `name` prefixes keys in messages ("listener"), `line_key` in Config::lines ("listener[0]").
  Section(Config& config, const toml::table& table, std::string name, std::string line_key)
      : config_(config), table_(table), name_(std::move(name)), line_key_(std::move(line_key)) {}

  // Calls convert(value) when the file sets `key`. A std::invalid_argument from it becomes a
  // ConfigError at the value's line.
  template <typename Convert>
  void read(std::string_view key, Convert&& convert) {
    const auto* node = find(key);
    if (node == nullptr) return;
    try {
      convert(*node);
    } catch (const std::invalid_argument& error) {
      fail(*node, key, error.what());
    }
  }

  // Like read(), for a key that must be set.
  template <typename Convert>
  void read_required(std::string_view key, Convert&& convert) {
    if (!table_.contains(key)) fail(table_, key, "missing");
    read(key, std::forward<Convert>(convert));
  }

  // Calls convert(element, index) for each element of the array `key`, reporting a problem at
  // the element's line; `what` describes the array expected.
  template <typename Convert>
  void read_each(std::string_view key, std::string_view what, Convert&& convert) {
    const auto* node = find(key);
    if (node == nullptr) return;
    const auto* array = node->as_array();
    if (array == nullptr) fail(*node, key, "must be " + std::string(what));
    for (std::size_t i = 0; i < array->size(); ++i) {
      const auto& element = *array->get(i);
      config_.lines[element_key(key, i)] = line_of(element);
      try {
        convert(element, i);
      } catch (const std::invalid_argument& error) {
        fail(element, key, error.what());
      }
    }
  }

  // Each [[key]] table, as a Section of its own.
  template <typename ReadOne>
  void read_tables(std::string_view key, ReadOne&& read_one) {
    read_each(key, "an array of tables ([[" + full_name(key) + "]])",
              [&](const toml::node& element, std::size_t i) {
                const auto* table = element.as_table();
                if (table == nullptr) throw std::invalid_argument("must be a table");
                Section section(config_, *table, full_name(key), element_key(key, i));
                read_one(section);
                section.reject_unknown();
              });
  }

  // The [key] table as a Section; read_body is not called when the file has no such table. A
  // std::invalid_argument from read_body itself is about the table as a whole (its name).
  template <typename ReadBody>
  void read_table(std::string_view key, ReadBody&& read_body) {
    const auto* node = find(key);
    if (node == nullptr) return;
    const auto* table = node->as_table();
    if (table == nullptr) fail(*node, key, "must be a table ([" + full_name(key) + "])");
    Section section(config_, *table, full_name(key), line_key(key));
    try {
      read_body(section);
    } catch (const std::invalid_argument& error) {
      fail(*node, key, error.what());
    }
    section.reject_unknown();
  }

  // Each table under [key] as a Section, with its user-chosen name: [routes."example.org"].
  template <typename ReadOne>
  void read_named_tables(std::string_view key, ReadOne&& read_one) {
    read_table(key, [&](Section& parent) { parent.read_all_tables(read_one); });
  }

  [[noreturn]] void fail(const toml::node& node, std::string_view key,
                         std::string_view what) const {
    throw ConfigError(config_.path + ":" + std::to_string(line_of(node)) + ": " + full_name(key) +
                      ": " + std::string(what));
  }

  void reject_unknown() const {
    // The first in the file: toml++ iterates in key order, not file order.
    const toml::key* first = nullptr;
    for (const auto& [key, value] : table_) {
      if (!known_.contains(key.str()) && (first == nullptr || line_of(key) < line_of(*first))) {
        first = &key;
      }
    }
    if (first != nullptr) {
      throw ConfigError(config_.path + ":" + std::to_string(line_of(*first)) + ": unknown key '" +
                        full_name(first->str()) + "'");
    }
  }

 private:
  const toml::node* find(std::string_view key) {
    known_.emplace(key);
    const auto* node = table_.get(key);
    if (node != nullptr) config_.lines[line_key(key)] = line_of(*node);
    return node;
  }

  template <typename ReadOne>
  void read_all_tables(ReadOne&& read_one) {
    for (const auto& [key, value] : table_) {
      read_table(key.str(), [&](Section& section) { read_one(key.str(), section); });
    }
  }

  std::string full_name(std::string_view key) const {
    return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  }
  std::string line_key(std::string_view key) const {
    return line_key_.empty() ? std::string(key) : line_key_ + "." + std::string(key);
  }
  std::string element_key(std::string_view key, std::size_t index) const {
    return line_key(key) + "[" + std::to_string(index) + "]";
  }

  Config& config_;
  const toml::table& table_;
  std::string name_;
  std::string line_key_;
  std::set<std::string, std::less<>> known_;
};

// --- The sections.

void read_server(Section& s, Config::Server& server) {
  s.read("hostname", [&](auto& v) { server.hostname = to_domain(to_string(v)); });
  s.read("loops", [&](auto& v) { server.loops = static_cast<unsigned>(to_integer(v, 0, 1024)); });
  s.read("shutdown_timeout", [&](auto& v) { server.shutdown_timeout = to_duration(v, true); });
}

void set_listener_address(ListenerConfig& listener, const HostPort& address) {
  listener.host = address.host;
  listener.port = address.port;
}

void read_listener(Section& s, ListenerConfig& listener, const Config& config) {
  constexpr std::int64_t kMax32 = std::numeric_limits<std::uint32_t>::max();
  set_listener_address(listener, parse_host_port(listener.address));
  s.read("address", [&](auto& v) {
    set_listener_address(listener, to_ip_port(v));
    listener.address = to_string(v);
    // Two listeners on one address would split its connections (SO_REUSEPORT), not fail.
    const auto ip = policy::IpAddress::parse(listener.host);
    for (std::size_t i = 0; i < config.listeners.size(); ++i) {
      const auto& other = config.listeners[i];
      if (other.port == listener.port && policy::IpAddress::parse(other.host) == ip) {
        throw std::invalid_argument("same address as the listener at " +
                                    config.where("listener[" + std::to_string(i) + "].address"));
      }
    }
  });
  s.read("mode", [&](auto& v) {
    const auto mode = to_choice(v, {"relay", "submission", "smtps"});
    listener.mode = mode == "relay"        ? ListenerMode::relay
                    : mode == "submission" ? ListenerMode::submission
                                           : ListenerMode::smtps;
  });
  s.read("max_message_size", [&](auto& v) { listener.max_message_size = to_size(v, 1); });
  s.read("max_recipients", [&](auto& v) {
    listener.max_recipients = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_connections", [&](auto& v) {
    listener.max_connections = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("proxy_protocol", [&](auto& v) { listener.proxy_protocol = to_bool(v); });
  s.read("command_timeout", [&](auto& v) { listener.command_timeout = to_duration(v, false); });
  s.read("data_timeout", [&](auto& v) { listener.data_timeout = to_duration(v, false); });
  s.read("min_data_rate", [&](auto& v) { listener.min_data_rate = to_size(v, 0); });
}

void read_relay(Section& s, Config::Relay& relay) {
  s.read_each("networks", "an array of CIDR strings", [&](auto& v, std::size_t) {
    auto text = to_string(v);
    const auto network = policy::Cidr::parse(text);
    if (!network) throw std::invalid_argument("not a network: " + quoted(text));
    relay.networks.push_back(*network);
    relay.network_texts.push_back(std::move(text));
  });
  s.read_each("domains", "an array of domain names",
              [&](auto& v, std::size_t) { relay.domains.push_back(to_domain(to_string(v))); });
}

void read_delivery(Section& s, Config::Delivery& delivery) {
  s.read("smarthost", [&](auto& v) {
    delivery.smarthost = to_string(v);
    if (!delivery.smarthost.empty()) parse_host_port(delivery.smarthost);
  });
  s.read("port",
         [&](auto& v) { delivery.port = static_cast<std::uint16_t>(to_integer(v, 1, 65535)); });
  s.read("max_connections_per_destination", [&](auto& v) {
    delivery.max_connections_per_destination =
        static_cast<std::uint32_t>(to_integer(v, 1, std::numeric_limits<std::uint32_t>::max()));
  });
  s.read("tls", [&](auto& v) {
    delivery.tls = to_choice(v, {"off", "opportunistic", "required"});
  });
}

// [retry] and each [retry.domains."x"]: the latter start from the former.
void read_retry_values(Section& s, RetryConfig& retry) {
  s.read("initial", [&](auto& v) { retry.initial = to_duration(v, false); });
  s.read("factor", [&](auto& v) { retry.factor = to_number(v, 1, 1000); });
  s.read("max_interval", [&](auto& v) { retry.max_interval = to_duration(v, false); });
  s.read("max_age", [&](auto& v) { retry.max_age = to_duration(v, false); });
  s.read("jitter", [&](auto& v) { retry.jitter = to_number(v, 0, 1); });
  s.read("delay_warning", [&](auto& v) { retry.delay_warning = to_duration(v, true); });
}

void read_retry(Section& s, Config& config) {
  read_retry_values(s, config.retry);
  s.read_named_tables("domains", [&](std::string_view name, Section& domain) {
    auto& retry = config.retry_domains[to_domain(name)] = config.retry;
    read_retry_values(domain, retry);
  });
}

void read_dkim_sign(Section& s, std::vector<DkimSignConfig>& signers) {
  auto& signer = signers.emplace_back();
  s.read_required("domain", [&](auto& v) { signer.domain = to_domain(to_string(v)); });
  s.read_required("selector", [&](auto& v) { signer.selector = to_domain(to_string(v)); });
  s.read_required("key", [&](auto& v) { signer.key = to_nonempty_string(v); });
}

Config read_config(const toml::table& root, const std::string& path) {
  Config config;
  config.path = path;
  Section top(config, root, "", "");
  top.read_table("server", [&](Section& s) { read_server(s, config.server); });
  top.read_tables("listener", [&](Section& s) {
    ListenerConfig listener;
    read_listener(s, listener, config);
    config.listeners.push_back(std::move(listener));
  });
  top.read_table("queue", [&](Section& s) {
    s.read("path", [&](auto& v) { config.queue.path = to_nonempty_string(v); });
  });
  top.read_table("relay", [&](Section& s) { read_relay(s, config.relay); });
  top.read_table("delivery", [&](Section& s) { read_delivery(s, config.delivery); });
  top.read_named_tables("routes", [&](std::string_view name, Section& s) {
    auto& route = config.routes[to_domain(name)];
    s.read_required("nexthop", [&](auto& v) {
      route.nexthop = to_string(v);
      parse_host_port(route.nexthop);
    });
  });
  top.read_table("retry", [&](Section& s) { read_retry(s, config); });
  top.read_table("dns", [&](Section& s) {
    s.read_each("servers", "an array of \"ip:port\" strings", [&](auto& v, std::size_t) {
      to_ip_port(v);
      config.dns.servers.push_back(to_string(v));
    });
  });
  top.read_table("metrics", [&](Section& s) {
    s.read("listen", [&](auto& v) {
      to_ip_port(v);
      config.metrics.listen = to_string(v);
    });
  });
  top.read_table("log", [&](Section& s) {
    s.read("format", [&](auto& v) { config.log.format = to_choice(v, {"logfmt", "json"}); });
    s.read("level", [&](auto& v) {
      config.log.level = to_choice(v, {"debug", "info", "warn", "error"});
    });
  });
  top.read_table("admin", [&](Section& s) {
    s.read("listen", [&](auto& v) {
      to_ip_port(v);
      config.admin.listen = to_string(v);
    });
    s.read("token", [&](auto& v) { config.admin.token = to_string(v); });
  });
  // Anyone who can reach the admin API can delete mail: off loopback it needs a secret.
  if (config.admin.token.empty() && !is_loopback(config.admin.listen)) {
    throw ConfigError(config.where("admin.listen") +
                      ": admin.token: required when admin.listen is not loopback");
  }
  top.read_table("tls", [&](Section& s) {
    s.read("cert", [&](auto& v) { config.tls.cert = to_string(v); });
    s.read("key", [&](auto& v) { config.tls.key = to_string(v); });
  });
  top.read_table("auth", [&](Section& s) {
    s.read("users_file", [&](auto& v) { config.auth.users_file = to_string(v); });
  });
  top.read_table("policy", [&](Section& s) {
    s.read("spf", [&](auto& v) { config.policy.spf = to_choice(v, {"off", "tag", "reject"}); });
    s.read("dkim_verify", [&](auto& v) {
      config.policy.dkim_verify = to_choice(v, {"off", "tag"});
    });
    s.read("rdns", [&](auto& v) { config.policy.rdns = to_choice(v, {"off", "tag", "require"}); });
  });
  top.read_table("dkim", [&](Section& s) {
    s.read_tables("sign", [&](Section& sign) { read_dkim_sign(sign, config.dkim_sign); });
  });
  top.reject_unknown();
  return config;
}

// --- Features not built yet.

bool is_true(const toml::node& value) {
  return value.value_or(false);
}
bool is_set(const toml::node& value) {
  if (const auto* table = value.as_table()) return !table->empty();
  if (const auto* array = value.as_array()) return !array->empty();
  return !value.value_or(""sv).empty();
}
bool is_not_off(const toml::node& value) {
  return value.value_or(""sv) != "off";
}
bool is_not_relay(const toml::node& value) {
  return value.value_or(""sv) != "relay";
}

// Keys that parse and validate but whose feature relayq does not have yet: a config that uses
// one is refused rather than half-obeyed. Delete an entry when its feature lands.
struct UnbuiltFeature {
  std::string_view key;  // dotted; applies to every element of an array of tables on the way
  bool (*in_use)(const toml::node& value);
};
constexpr UnbuiltFeature kUnbuiltFeatures[] = {
    {"listener.mode", is_not_relay},
    {"listener.proxy_protocol", is_true},
    {"tls.cert", is_set},
    {"tls.key", is_set},
    {"auth.users_file", is_set},
    {"policy.spf", is_not_off},
    {"policy.dkim_verify", is_not_off},
    {"policy.rdns", is_not_off},
    {"dkim.sign", is_set},
};

// Calls visit(value) for every value at the dotted `key` under `node`.
void visit_key(const toml::node& node, std::string_view key,
               const std::function<void(const toml::node&)>& visit) {
  if (const auto* array = node.as_array()) {
    for (const auto& element : *array) visit_key(element, key, visit);
    return;
  }
  const auto* table = node.as_table();
  const auto dot = key.find('.');
  const auto* child = table == nullptr ? nullptr : table->get(key.substr(0, dot));
  if (child == nullptr) return;
  if (dot == std::string_view::npos) {
    visit(*child);
  } else {
    visit_key(*child, key.substr(dot + 1), visit);
  }
}

// Refuses the first use in the file of a feature from kUnbuiltFeatures. Runs after validation,
// so that a wrong value is reported as wrong rather than as unsupported.
void reject_unbuilt_features(const toml::table& root, const std::string& path) {
  const toml::node* first = nullptr;
  std::string_view first_key;
  for (const auto& feature : kUnbuiltFeatures) {
    visit_key(root, feature.key, [&](const toml::node& value) {
      if (feature.in_use(value) && (first == nullptr || line_of(value) < line_of(*first))) {
        first = &value;
        first_key = feature.key;
      }
    });
  }
  if (first != nullptr) {
    throw ConfigError(path + ":" + std::to_string(line_of(*first)) + ": " + std::string(first_key) +
                      ": not supported yet");
  }
}

}  // namespace

std::string Config::where(std::string_view key) const {
  while (!key.empty()) {
    if (const auto it = lines.find(key); it != lines.end()) {
      return path + ":" + std::to_string(it->second);
    }
    const auto cut = key.find_last_of(".[");
    key = key.substr(0, cut == std::string_view::npos ? 0 : cut);
  }
  return path;
}

Config parse_config(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& error) {
    throw ConfigError(path + ":" + std::to_string(error.source().begin.line) + ": " +
                      std::string(error.description()));
  }
  auto config = read_config(root, path);
  reject_unbuilt_features(root, path);
  return config;
}

Config load_config(const std::string& path) {
  // stdio rather than ifstream: it keeps errno, and reading a directory fails with EISDIR.
  const auto cannot_read = [&] {
    return ConfigError(path + ": cannot read file: " + std::strerror(errno));
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) throw cannot_read();
  std::string text;
  char buffer[64 * 1024];
  while (const auto count = std::fread(buffer, 1, sizeof buffer, file.get())) {
    text.append(buffer, count);
  }
  if (std::ferror(file.get())) throw cannot_read();
  return parse_config(text, path);
}

}  // namespace relayq::mta
