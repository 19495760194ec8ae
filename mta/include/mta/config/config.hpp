// The relayq configuration: the TOML file of shared/CONTRACT.md, parsed and validated.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dns/ip_address.hpp"
#include "mta/config/reply_rule.hpp"
#include "policy/dovecot_auth.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::mta {

using Duration = std::chrono::milliseconds;

enum class ListenerMode { relay, submission, smtps };

struct ListenerConfig {
  std::string address = "127.0.0.1:2525";  // "ip:port" or "[ipv6]:port", as written
  std::string host;                        // the ip part, brackets removed
  std::uint16_t port = 0;
  ListenerMode mode = ListenerMode::relay;
  std::uint64_t max_message_size = 25ull << 20;
  // An extension: the header section a client may send (up to its empty line).
  std::uint64_t max_header_size = 1ull << 20;
  std::uint32_t max_recipients = 1000;
  // Extensions: replies of 400 or more, and commands that move no mail (NOOP, RSET, VRFY,
  // HELP, EXPN), a session may collect before it is closed with 421 4.7.0.
  std::uint32_t max_errors = 20;
  std::uint32_t max_junk_commands = 100;
  std::uint32_t max_connections = 10000;
  // Extensions, for clients outside relay.networks: connections open at once from one address,
  // and begun from one address within a minute (0 = no limit); more get 421 4.7.0.
  std::uint32_t max_connections_per_client = 50;
  std::uint32_t max_connections_per_client_per_minute = 0;
  bool proxy_protocol = false;
  // An extension: offer AUTH without TLS too. Only for a listener whose network is trusted
  // not to be read (a loopback webmail, say): passwords cross it in the clear.
  bool plaintext_auth = false;
  // Extensions to the contract: RFC 5321 4.5.3.2 timeouts and a minimum data rate.
  Duration command_timeout = std::chrono::minutes(5);  // waiting for a command line
  Duration data_timeout = std::chrono::minutes(3);     // between data blocks in DATA/BDAT
  std::uint64_t min_data_rate = 500;                   // bytes/s over a whole DATA; 0 = off
};

// [retry] and [retry.domains."x"]: the queue's own policy type, filled from the file.
using RetryConfig = queue::RetryPolicy;

struct RouteConfig {
  std::string nexthop;  // "host:port", "lmtp:host:port" or "lmtp:unix:/path"
  std::string tls;      // off | opportunistic | required; empty = delivery.tls
  std::string tls_ca;   // with tls = "required": verify the certificate against this CA file
  // Ask the (LMTP) next hop whether each recipient exists before accepting its RCPT.
  bool verify_recipients = false;
};

// How much traffic one destination gets: [delivery]'s defaults, or a [shaping."x"] entry (whose
// unset keys keep [delivery]'s values).
struct ShapingConfig {
  std::uint32_t max_connections = 20;             // open at once, across all loops
  std::uint32_t max_messages_per_connection = 0;  // then the connection is closed; 0 = no limit
  double max_message_rate = 0;                    // messages per second; 0 = no limit
  double max_connection_rate = 0;                 // connections opened per second; 0 = no limit
};

struct DkimSignConfig {
  std::string domain;
  std::string selector;
  std::string key;  // path to a PEM file
};

struct Config {
  std::string path;  // the file this came from

  struct Server {
    std::string hostname;  // as read: the file's, else machine_hostname()
    unsigned loops = 0;    // event loop threads; 0 = one per core
    Duration shutdown_timeout = std::chrono::seconds(10);
  } server;

  std::vector<ListenerConfig> listeners;

  struct Queue {
    std::string path = "var/queue";
  } queue;

  struct Relay {
    std::vector<dns::Cidr> networks;
    std::vector<std::string> network_texts;
    std::vector<std::string> domains;
    // An extension: accept '%', '!' and quoted-'@' routing in local parts from strangers.
    bool allow_untrusted_routing = false;
  } relay;

  struct Delivery {
    std::string smarthost;
    std::uint16_t port = 25;
    std::uint32_t max_connections_per_destination = 20;
    std::string tls = "opportunistic";
    std::string tls_ca;  // with tls = "required": verify next hops' certificates against it
    // Extensions: the shaping of destinations without a [shaping] entry (max_connections is
    // max_connections_per_destination above, kept in step with it).
    ShapingConfig shaping;
    // Adaptive back-off: a "slow down" reply multiplies a destination's rate and connections by
    // slowdown_factor (1 = never slow down); each recover_after successful deliveries undo one
    // such step.
    double slowdown_factor = 0.5;
    std::uint32_t recover_after = 20;
  } delivery;

  std::map<std::string, RouteConfig> routes;  // recipient domain (lower-case) -> next hop

  // [shaping."domain"] (a recipient domain) and [shaping."mx:host.suffix"] (every domain whose
  // MX hosts are under host.suffix, sharing one set of limits); keys lower-case.
  std::map<std::string, ShapingConfig> shaping;

  RetryConfig retry;
  std::map<std::string, RetryConfig> retry_domains;  // per destination domain overrides

  struct Dns {
    std::vector<std::string> servers;
  } dns;

  struct Metrics {
    std::string listen = "127.0.0.1:9464";
  } metrics;

  // One line per event on stderr: logfmt (key=value) or JSON objects.
  struct Log {
    std::string format = "logfmt";  // logfmt | json
    std::string level = "info";     // debug | info | warn | error
  } log;

  struct Admin {
    std::string listen = "127.0.0.1:8025";
    // Bearer token the admin API requires; empty = none, allowed only on a loopback listen.
    std::string token;
  } admin;

  struct Tls {
    std::string cert;
    std::string key;
    std::string min_version = "TLSv1.2";  // TLSv1.2 | TLSv1.3, both directions
    // What the listeners offer TLS 1.2 clients (OpenSSL syntax): forward secrecy and AEAD only,
    // as Mozilla's "intermediate" profile; "DEFAULT" gives OpenSSL's own list, CBC included.
    std::string ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
  } tls;

  // Who submission users are: a users file, or Dovecot's auth service (one or the other).
  struct Auth {
    std::string users_file;
    std::optional<policy::DovecotEndpoint> dovecot;  // "unix:PATH" or "ip:port"
  } auth;

  struct Policy {
    std::string spf = "off";
    std::string dkim_verify = "off";
    std::string rdns = "off";
    std::string dmarc = "off";
  } policy;

  std::vector<DkimSignConfig> dkim_sign;

  // [[reply_rule]]: how to classify failure replies, tried before the built-in table.
  std::vector<ReplyRule> reply_rules;

  // The line of every key and table the file sets, for errors found after parsing (a port that
  // cannot be bound, a key file that cannot be read). Keys are dotted as in error messages,
  // with an index for arrays of tables: "tls.cert", "listener[0].address", "dkim.sign[1]".
  std::map<std::string, std::uint32_t, std::less<>> lines;

  // "FILE:LINE" for `key`, or for the nearest enclosing table the file sets; just "FILE" when
  // the value is a default the file does not mention.
  std::string where(std::string_view key) const;
};

// A config error, already formatted as "FILE:LINE: message".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The default of server.hostname, as Postfix's myhostname: the machine's fully qualified name,
// which getaddrinfo(AI_CANONNAME) gives for gethostname()'s (from /etc/hosts or DNS), else
// gethostname()'s own; lower-case. Looked up once per process, and only when a config needs it.
const std::string& machine_hostname();

// Reads and validates a config file. Throws ConfigError on the first problem.
Config load_config(const std::string& path);

// Parses config text; `path` is used in error messages only.
Config parse_config(std::string_view text, const std::string& path);

// "25MiB", "10M", "512K", "1G", "1000" -> bytes. Throws std::invalid_argument.
std::uint64_t parse_size(std::string_view text);
// "30s", "5m", "4h", "5d", "0" -> duration. Throws std::invalid_argument.
Duration parse_duration(std::string_view text);

struct HostPort {
  std::string host;  // brackets removed
  std::uint16_t port = 0;
};
// "192.0.2.1:25", "[2001:db8::1]:25" or "mx.example:25". Throws std::invalid_argument.
HostPort parse_host_port(std::string_view text);

// A route's next hop: "host:port" (SMTP), "lmtp:host:port" or "lmtp:unix:/path" (LMTP).
struct Nexthop {
  bool lmtp = false;
  std::string unix_path;  // LMTP over this unix socket; `address` is unused then
  HostPort address;
};
// Throws std::invalid_argument.
Nexthop parse_nexthop(std::string_view text);

// "50/s", "3000/m", "10000/h" -> per second. Throws std::invalid_argument.
double parse_rate(std::string_view text);

}  // namespace relayq::mta
