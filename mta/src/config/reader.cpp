// Reading and validating the relayq TOML config (shared/CONTRACT.md, "Config file (TOML)"): the
// walk over the file's tables, Section, Config::where. Runs on the caller's thread: the main
// thread, at start and at SIGHUP reload. Every problem is a ConfigError "FILE[:LINE]: ...".
#include "mta/config/config.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "config/section.hpp"
#include "config/sections.hpp"
#include "dns/ip_address.hpp"

namespace relayq::mta {

namespace config_reader {

std::uint32_t line_of(const toml::node& node) {
  return node.source().begin.line;
}
std::uint32_t line_of(const toml::key& key) {
  return key.source().begin.line;
}

// --- One TOML table of the file.

void Section::fail(const toml::node& node, std::string_view key, std::string_view what) const {
  throw ConfigError(config_.path + ":" + std::to_string(line_of(node)) + ": " + full_name(key) +
                    ": " + std::string(what));
}

void Section::reject_unknown() const {
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

const toml::node* Section::find(std::string_view key) {
  known_.emplace(key);
  const auto* node = table_.get(key);
  if (node != nullptr) config_.lines[line_key(key)] = line_of(*node);
  return node;
}

std::string Section::full_name(std::string_view key) const {
  return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
}
std::string Section::line_key(std::string_view key) const {
  return line_key_.empty() ? std::string(key) : line_key_ + "." + std::string(key);
}
std::string Section::element_key(std::string_view key, std::size_t index) const {
  return line_key(key) + "[" + std::to_string(index) + "]";
}

namespace {

// 127.0.0.0/8 or ::1 (IPv4-mapped loopback included): reachable from this host only.
bool is_loopback(const std::string& ip_port) {
  const auto ip = dns::IpAddress::parse(parse_host_port(ip_port).host);
  return ip && (dns::Cidr::parse("127.0.0.0/8")->contains(*ip) ||
                dns::Cidr::parse("::1/128")->contains(*ip));
}

// What listeners need from [tls] and [auth], checked once both are read: a listener that could
// never accept mail, or never offer what its mode promises, is a mistake to report now.
void check_tls_and_auth(const Config& config) {
  const bool has_tls = !config.tls.cert.empty() || !config.tls.key.empty();
  if (has_tls && (config.tls.cert.empty() || config.tls.key.empty())) {
    throw ConfigError(config.where(config.tls.cert.empty() ? "tls.key" : "tls.cert") +
                      ": tls: cert and key go together");
  }
  for (std::size_t i = 0; i < config.listeners.size(); ++i) {
    const ListenerConfig& listener = config.listeners[i];
    const std::string key = "listener[" + std::to_string(i) + "]";
    if (listener.mode == ListenerMode::relay) continue;
    if (config.auth.users_file.empty() && !config.auth.dovecot) {
      throw ConfigError(config.where(key + ".mode") +
                        ": listener.mode: submission and smtps need auth.users_file or "
                        "auth.dovecot");
    }
    if (!has_tls && (listener.mode == ListenerMode::smtps || !listener.plaintext_auth)) {
      throw ConfigError(config.where(key + ".mode") +
                        ": listener.mode: needs tls.cert and tls.key (AUTH is offered under "
                        "TLS only, unless plaintext_auth = true)");
    }
  }
}

// --- The file.

Config read_config(const toml::table& root, const std::string& path) {
  Config config;
  config.path = path;
  Section top(config, root, "", "");
  top.read_table("server", [&](Section& s) { read_server(s, config.server); });
  if (config.server.hostname.empty()) config.server.hostname = machine_hostname();
  top.read_tables("listener", [&](Section& s) {
    ListenerConfig listener;
    read_listener(s, listener, config);
    config.listeners.push_back(std::move(listener));
  });
  top.read_table("queue", [&](Section& s) { read_queue(s, config.queue); });
  top.read_table("relay", [&](Section& s) { read_relay(s, config.relay); });
  top.read_table("delivery", [&](Section& s) { read_delivery(s, config.delivery); });
  top.read_named_tables(
      "routes", [&](std::string_view name, Section& s) { read_route(s, name, config.routes); });
  top.read_named_tables("shaping",
                        [&](std::string_view name, Section& s) { read_shaping(s, name, config); });
  top.read_table("retry", [&](Section& s) { read_retry(s, config); });
  top.read_table("dns", [&](Section& s) { read_dns(s, config.dns); });
  top.read_table("metrics", [&](Section& s) { read_metrics(s, config.metrics); });
  top.read_table("log", [&](Section& s) { read_log(s, config.log); });
  top.read_table("admin", [&](Section& s) { read_admin(s, config.admin); });
  // Anyone who can reach the admin API can delete mail: off loopback it needs a secret.
  if (config.admin.token.empty() && !is_loopback(config.admin.listen)) {
    throw ConfigError(config.where("admin.listen") +
                      ": admin.token: required when admin.listen is not loopback");
  }
  top.read_table("tls", [&](Section& s) { read_tls(s, config.tls); });
  top.read_table("auth", [&](Section& s) { read_auth(s, config.auth); });
  top.read_table("policy", [&](Section& s) { read_policy(s, config.policy); });
  top.read_table("dkim", [&](Section& s) { read_dkim(s, config.dkim_sign); });
  top.read_tables("reply_rule", [&](Section& s) { read_reply_rule(s, config.reply_rules); });
  top.reject_unknown();
  check_tls_and_auth(config);
  return config;
}

}  // namespace

}  // namespace config_reader

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
  return config_reader::read_config(root, path);
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
