// The readers of the config file's tables, and the value conversions they use. Run on the
// caller's thread: the main thread, at start and at SIGHUP reload. A bad value throws
// std::invalid_argument saying what is wrong, which Section reports as ConfigError FILE:LINE.
#include "config/sections.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/un.h>

#include <toml++/toml.h>

#include "config/section.hpp"
#include "dns/domain_name.hpp"
#include "dns/ip_address.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta::config_reader {

namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
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

// The largest message relayq can take: a message is held in memory whole while it arrives and
// is stored as one RocksDB value, and the SIZE it announces should mean what it says.
constexpr std::uint64_t kMaxMessageSize = 1ull << 30;  // 1 GiB

// Bytes as an integer, or a string with a unit, from `min` to `max`.
std::uint64_t to_size(const toml::node& node, std::uint64_t min,
                      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
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
  if (bytes > max) throw std::invalid_argument("must be at most " + std::to_string(max));
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
  const std::string domain = dns::lower_case(text);
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
  if (!dns::IpAddress::parse(address.host)) {
    throw std::invalid_argument("not an IP address: " + quoted(address.host) +
                                " (expected ip:port or [ipv6]:port)");
  }
  return address;
}

// [auth] dovecot: "unix:PATH", a unix_listener of Dovecot's auth service (auth-client), or
// "ip:port", an inet_listener of it. An address, not a name: a check never waits on DNS.
policy::DovecotEndpoint to_dovecot_endpoint(const toml::node& node) {
  const std::string text = to_string(node);
  const std::string expected = "; expected \"unix:/path/to/socket\" or \"ip:port\"";
  policy::DovecotEndpoint endpoint;
  if (text.starts_with("unix:")) {
    endpoint.socket_path = text.substr(5);
    if (!endpoint.socket_path.starts_with('/') ||
        endpoint.socket_path.find('\0') != std::string::npos)
      throw std::invalid_argument("not an absolute socket path: " + quoted(text) + expected);
    constexpr std::size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
    if (endpoint.socket_path.size() > kMaxPath)
      throw std::invalid_argument("a unix socket's path has at most " + std::to_string(kMaxPath) +
                                  " bytes: " + quoted(text));
    return endpoint;
  }
  try {
    const HostPort address = to_ip_port(node);
    endpoint.address = *dns::IpAddress::parse(address.host);
    endpoint.port = address.port;
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(error.what() + expected);
  }
  return endpoint;
}

// --- Helpers of the readers below.

void set_listener_address(ListenerConfig& listener, const HostPort& address) {
  listener.host = address.host;
  listener.port = address.port;
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

// [delivery]'s shaping keys, and each [shaping."x"]'s (`own_connections`: the latter's
// max_connections, which [delivery] calls max_connections_per_destination).
void read_shaping_values(Section& s, ShapingConfig& shaping, bool own_connections) {
  if (own_connections) {
    s.read("max_connections", [&](auto& v) {
      shaping.max_connections =
          static_cast<std::uint32_t>(to_integer(v, 1, std::numeric_limits<std::uint32_t>::max()));
    });
  }
  s.read("max_messages_per_connection", [&](auto& v) {
    shaping.max_messages_per_connection =
        static_cast<std::uint32_t>(to_integer(v, 0, std::numeric_limits<std::uint32_t>::max()));
  });
  s.read("max_message_rate", [&](auto& v) { shaping.max_message_rate = parse_rate(to_string(v)); });
  s.read("max_connection_rate",
         [&](auto& v) { shaping.max_connection_rate = parse_rate(to_string(v)); });
}

void read_dkim_sign(Section& s, std::vector<DkimSignConfig>& signers) {
  auto& signer = signers.emplace_back();
  s.read_required("domain", [&](auto& v) { signer.domain = to_domain(to_string(v)); });
  s.read_required("selector", [&](auto& v) { signer.selector = to_domain(to_string(v)); });
  s.read_required("key", [&](auto& v) { signer.key = to_nonempty_string(v); });
}

// [[reply_rule]] code: a prefix of a reply code, "0" being our own failures (no reply).
std::string to_code_prefix(const toml::node& node) {
  auto text = to_string(node);
  if (text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw std::invalid_argument("must be up to 3 digits of a reply code, not " + quoted(text));
  }
  return text;
}

// [[reply_rule]] enhanced: a prefix of an RFC 3463 status code, "5.1.1" or "4.7.".
std::string to_enhanced_prefix(const toml::node& node) {
  auto text = to_string(node);
  if (!std::all_of(text.begin(), text.end(),
                   [](char c) { return (c >= '0' && c <= '9') || c == '.'; }) ||
      text.starts_with('.')) {
    throw std::invalid_argument("must be digits and dots, like \"5.1.1\" or \"4.7.\", not " +
                                quoted(text));
  }
  return text;
}

ReplyCategory to_reply_category(const toml::node& node) {
  const auto text = to_string(node);
  if (const auto category = parse_reply_category(text)) return *category;
  std::string names;
  for (const ReplyCategory category : kReplyCategories)
    names += (names.empty() ? "" : ", ") + std::string(mta::to_string(category));
  throw std::invalid_argument("must be one of " + names + "; not " + quoted(text));
}

}  // namespace

// --- The sections.

void read_server(Section& s, Config::Server& server) {
  s.read("hostname", [&](auto& v) { server.hostname = to_domain(to_string(v)); });
  s.read("loops", [&](auto& v) { server.loops = static_cast<unsigned>(to_integer(v, 0, 1024)); });
  s.read("shutdown_timeout", [&](auto& v) { server.shutdown_timeout = to_duration(v, true); });
}

void read_listener(Section& s, ListenerConfig& listener, const Config& config) {
  constexpr std::int64_t kMax32 = std::numeric_limits<std::uint32_t>::max();
  set_listener_address(listener, parse_host_port(listener.address));
  s.read("address", [&](auto& v) {
    set_listener_address(listener, to_ip_port(v));
    listener.address = to_string(v);
    // Two listeners on one address would split its connections (SO_REUSEPORT), not fail.
    const auto ip = dns::IpAddress::parse(listener.host);
    for (std::size_t i = 0; i < config.listeners.size(); ++i) {
      const auto& other = config.listeners[i];
      if (other.port == listener.port && dns::IpAddress::parse(other.host) == ip) {
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
  s.read("max_message_size",
         [&](auto& v) { listener.max_message_size = to_size(v, 1, kMaxMessageSize); });
  s.read("max_header_size",
         [&](auto& v) { listener.max_header_size = to_size(v, 1, kMaxMessageSize); });
  s.read("max_recipients", [&](auto& v) {
    listener.max_recipients = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_errors", [&](auto& v) {
    listener.max_errors = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_junk_commands", [&](auto& v) {
    listener.max_junk_commands = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_connections", [&](auto& v) {
    listener.max_connections = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_connections_per_client", [&](auto& v) {
    listener.max_connections_per_client = static_cast<std::uint32_t>(to_integer(v, 1, kMax32));
  });
  s.read("max_connections_per_client_per_minute", [&](auto& v) {
    listener.max_connections_per_client_per_minute =
        static_cast<std::uint32_t>(to_integer(v, 0, kMax32));
  });
  s.read("proxy_protocol", [&](auto& v) { listener.proxy_protocol = to_bool(v); });
  s.read("plaintext_auth", [&](auto& v) { listener.plaintext_auth = to_bool(v); });
  s.read("command_timeout", [&](auto& v) { listener.command_timeout = to_duration(v, false); });
  s.read("data_timeout", [&](auto& v) { listener.data_timeout = to_duration(v, false); });
  s.read("min_data_rate", [&](auto& v) { listener.min_data_rate = to_size(v, 0); });
}

void read_queue(Section& s, Config::Queue& queue) {
  s.read("path", [&](auto& v) { queue.path = to_nonempty_string(v); });
}

void read_relay(Section& s, Config::Relay& relay) {
  s.read_each("networks", "an array of CIDR strings", [&](auto& v, std::size_t) {
    auto text = to_string(v);
    const auto network = dns::Cidr::parse(text);
    if (!network) throw std::invalid_argument("not a network: " + quoted(text));
    relay.networks.push_back(*network);
    relay.network_texts.push_back(std::move(text));
  });
  s.read_each("domains", "an array of domain names",
              [&](auto& v, std::size_t) { relay.domains.push_back(to_domain(to_string(v))); });
  s.read("allow_untrusted_routing", [&](auto& v) { relay.allow_untrusted_routing = to_bool(v); });
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
  s.read("tls_ca", [&](auto& v) { delivery.tls_ca = to_string(v); });
  delivery.shaping.max_connections = delivery.max_connections_per_destination;
  read_shaping_values(s, delivery.shaping, false);
  s.read("slowdown_factor", [&](auto& v) { delivery.slowdown_factor = to_number(v, 0.01, 1); });
  s.read("recover_after", [&](auto& v) {
    delivery.recover_after = static_cast<std::uint32_t>(to_integer(v, 1, 1'000'000));
  });
}

void read_shaping(Section& s, std::string_view name, Config& config) {
  // "mx:google.com" names MX hosts, anything else a recipient domain; both are domain syntax.
  const bool mx = name.starts_with("mx:");
  const std::string key = (mx ? "mx:" : "") + to_domain(mx ? name.substr(3) : name);
  auto& shaping = config.shaping[key] = config.delivery.shaping;
  read_shaping_values(s, shaping, true);
}

void read_route(Section& s, std::string_view name, std::map<std::string, RouteConfig>& routes) {
  auto& route = routes[to_domain(name)];
  bool unix_socket = false;
  bool lmtp = false;
  s.read_required("nexthop", [&](auto& v) {
    route.nexthop = to_string(v);
    const Nexthop nexthop = parse_nexthop(route.nexthop);
    unix_socket = !nexthop.unix_path.empty();
    lmtp = nexthop.lmtp;
  });
  s.read("verify_recipients", [&](auto& v) {
    route.verify_recipients = to_bool(v);
    // A probe asks a mailbox server of ours; asking a stranger's MX (a callout) is abuse.
    if (route.verify_recipients && !lmtp)
      throw std::invalid_argument("verify_recipients needs an LMTP next hop (\"lmtp:...\")");
  });
  s.read("tls", [&](auto& v) {
    route.tls = to_choice(v, {"off", "opportunistic", "required"});
    // A unix socket stays on this machine: there is nothing for TLS to protect.
    if (unix_socket && route.tls != "off")
      throw std::invalid_argument("a unix socket next hop takes no TLS (tls = \"off\" or unset)");
  });
  s.read("tls_ca", [&](auto& v) { route.tls_ca = to_string(v); });
}

void read_retry(Section& s, Config& config) {
  read_retry_values(s, config.retry);
  s.read_named_tables("domains", [&](std::string_view name, Section& domain) {
    auto& retry = config.retry_domains[to_domain(name)] = config.retry;
    read_retry_values(domain, retry);
  });
}

void read_dns(Section& s, Config::Dns& dns) {
  s.read_each("servers", "an array of \"ip:port\" strings", [&](auto& v, std::size_t) {
    to_ip_port(v);
    dns.servers.push_back(to_string(v));
  });
}

void read_metrics(Section& s, Config::Metrics& metrics) {
  s.read("listen", [&](auto& v) {
    to_ip_port(v);
    metrics.listen = to_string(v);
  });
}

void read_log(Section& s, Config::Log& log) {
  s.read("format", [&](auto& v) { log.format = to_choice(v, {"logfmt", "json"}); });
  s.read("level", [&](auto& v) { log.level = to_choice(v, {"debug", "info", "warn", "error"}); });
}

void read_admin(Section& s, Config::Admin& admin) {
  s.read("listen", [&](auto& v) {
    to_ip_port(v);
    admin.listen = to_string(v);
  });
  s.read("token", [&](auto& v) { admin.token = to_string(v); });
}

void read_tls(Section& s, Config::Tls& tls) {
  s.read("cert", [&](auto& v) { tls.cert = to_string(v); });
  s.read("key", [&](auto& v) { tls.key = to_string(v); });
  s.read("min_version", [&](auto& v) { tls.min_version = to_choice(v, {"TLSv1.2", "TLSv1.3"}); });
  s.read("ciphers", [&](auto& v) { tls.ciphers = to_nonempty_string(v); });
}

void read_auth(Section& s, Config::Auth& auth) {
  s.read("users_file", [&](auto& v) { auth.users_file = to_string(v); });
  s.read("dovecot", [&](auto& v) {
    if (to_string(v).empty()) return;  // "" is none, as for users_file
    auth.dovecot = to_dovecot_endpoint(v);
    // One database of users: with two, which one answers a login would be a guess.
    if (!auth.users_file.empty())
      throw std::invalid_argument("set auth.users_file or auth.dovecot, not both");
  });
}

void read_policy(Section& s, Config::Policy& policy) {
  s.read("spf", [&](auto& v) { policy.spf = to_choice(v, {"off", "tag", "reject"}); });
  s.read("dkim_verify", [&](auto& v) { policy.dkim_verify = to_choice(v, {"off", "tag"}); });
  s.read("rdns", [&](auto& v) { policy.rdns = to_choice(v, {"off", "tag", "require"}); });
  s.read("dmarc", [&](auto& v) { policy.dmarc = to_choice(v, {"off", "tag"}); });
}

void read_dkim(Section& s, std::vector<DkimSignConfig>& signers) {
  s.read_tables("sign", [&](Section& sign) { read_dkim_sign(sign, signers); });
}

void read_reply_rule(Section& s, std::vector<ReplyRule>& rules) {
  ReplyRule rule;
  s.read_required("category", [&](auto& v) { rule.category = to_reply_category(v); });
  s.read("code", [&](auto& v) { rule.code = to_code_prefix(v); });
  s.read("enhanced", [&](auto& v) { rule.enhanced = to_enhanced_prefix(v); });
  s.read("text", [&](auto& v) { rule.text = to_string(v); });
  // A rule without a condition would take every failure, hiding all the others.
  if (rule.code.empty() && rule.enhanced.empty() && rule.text.empty())
    throw std::invalid_argument("needs at least one of code, enhanced and text");
  rules.push_back(std::move(rule));
}

}  // namespace relayq::mta::config_reader
