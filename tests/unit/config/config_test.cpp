// Unit tests of the config file: the contract's example, defaults, value syntaxes and errors.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "dns/domain_name.hpp"
#include "mta/config/config.hpp"

using namespace relayq::mta;
using namespace std::chrono_literals;

namespace {

// The example of shared/CONTRACT.md, verbatim.
constexpr std::string_view kContractExample = R"([server]
hostname = "relay.example.test"     # banner, EHLO, Received:, DSN reporting MTA

[[listener]]                        # as many as wanted
address = "127.0.0.1:2525"          # IPv4 or [IPv6]:port
mode = "relay"                      # relay (port 25 style) | submission (AUTH required) | smtps (implicit TLS, AUTH)
max_message_size = "25MiB"          # advertised in SIZE, enforced while reading
max_recipients = 1000
max_connections = 10000
proxy_protocol = false              # HAProxy PROXY v1/v2 header from a trusted load balancer

[queue]
path = "var/queue"                  # the RocksDB directory

[relay]
networks = ["127.0.0.0/8", "::1/128"]  # clients that may relay to any domain
domains = []                           # recipient domains accepted from anyone (inbound MX role)

[delivery]
smarthost = ""                      # "host:port": send everything there instead of MX lookup
port = 25                           # port used for MX-resolved next hops
max_connections_per_destination = 20
tls = "opportunistic"               # off | opportunistic | required

[routes."example.org"]              # per recipient domain next hop, overrides MX
nexthop = "127.0.0.1:2601"

[retry]                              # the schedule for temporary failures
initial = "5m"                      # wait after the first failure
factor = 2.0                        # each wait is the previous times factor
max_interval = "4h"                 # cap on one wait
max_age = "5d"                      # then the recipient bounces
jitter = 0.1                        # +/- fraction of each wait
delay_warning = "4h"                # "still trying" DSN to the sender; "0" = off

[retry.domains."slow.example"]       # same keys, per destination domain

[shaping."gmail.com"]                # traffic shaping per destination domain; unset keys fall back to [delivery]
max_connections = 10                 # overrides delivery.max_connections_per_destination
max_messages_per_connection = 100    # then a new connection is opened; default unlimited
max_message_rate = "50/s"            # "N/s", "N/m" or "N/h"; default unlimited

[dns]
servers = []                         # "ip:port" list; empty = the system resolver

[metrics]
listen = "127.0.0.1:9464"            # Prometheus text exposition at /metrics

[admin]
listen = "127.0.0.1:8025"            # admin API used by `relayq queue`

[tls]
cert = ""                            # PEM chain, for STARTTLS and smtps
key = ""

[auth]
users_file = ""                      # user:hash lines for submission/smtps

[policy]
spf = "tag"                          # off | tag | reject   (tag = Authentication-Results only)
dkim_verify = "tag"                  # off | tag
rdns = "tag"                         # off | tag | require  (require = FCrDNS or 450/550)
dmarc = "tag"                        # off | tag             (tag = Authentication-Results only)

[[dkim.sign]]                         # sign outbound mail whose From: domain matches
domain = "example.test"
selector = "s1"
key = "keys/s1.pem"                  # RSA or Ed25519 PEM
)";

std::string error_of(std::string_view text) {
  try {
    parse_config(text, "test.toml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  FAIL("no error for:\n" << text);
  return {};
}

}  // namespace

TEST_CASE("The contract's example config parses, every key of it", "[mta][config]") {
  const auto config = parse_config(kContractExample, "relayq.toml");
  CHECK(config.path == "relayq.toml");
  CHECK(config.server.hostname == "relay.example.test");

  REQUIRE(config.listeners.size() == 1);
  const auto& listener = config.listeners[0];
  CHECK(listener.address == "127.0.0.1:2525");
  CHECK(listener.host == "127.0.0.1");
  CHECK(listener.port == 2525);
  CHECK(listener.mode == ListenerMode::relay);
  CHECK(listener.max_message_size == 25u * 1024 * 1024);
  CHECK(listener.max_recipients == 1000);
  CHECK(listener.max_connections == 10000);
  CHECK_FALSE(listener.proxy_protocol);

  CHECK(config.queue.path == "var/queue");
  REQUIRE(config.relay.networks.size() == 2);
  CHECK(config.relay.network_texts == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
  CHECK(config.relay.networks[0].prefix == 8);
  CHECK(config.relay.networks[1].network.v6);
  CHECK(config.relay.domains.empty());

  CHECK(config.delivery.smarthost.empty());
  CHECK(config.delivery.port == 25);
  CHECK(config.delivery.max_connections_per_destination == 20);
  CHECK(config.delivery.tls == "opportunistic");
  REQUIRE(config.routes.size() == 1);
  CHECK(config.routes.at("example.org").nexthop == "127.0.0.1:2601");
  REQUIRE(config.shaping.count("gmail.com") == 1);
  CHECK(config.shaping.at("gmail.com").max_connections == 10);
  CHECK(config.shaping.at("gmail.com").max_messages_per_connection == 100);
  CHECK(config.shaping.at("gmail.com").max_message_rate == 50);
  CHECK(config.shaping.at("gmail.com").max_connection_rate == 0);
  REQUIRE(config.retry_domains.count("slow.example") == 1);

  CHECK(config.retry.initial == 5min);
  CHECK(config.retry.factor == 2.0);
  CHECK(config.retry.max_interval == 4h);
  CHECK(config.retry.max_age == 120h);
  CHECK(config.retry.jitter == 0.1);
  CHECK(config.retry.delay_warning == 4h);

  CHECK(config.dns.servers.empty());
  CHECK(config.metrics.listen == "127.0.0.1:9464");
  CHECK(config.admin.listen == "127.0.0.1:8025");
  CHECK(config.tls.cert.empty());
  CHECK(config.tls.key.empty());
  CHECK(config.auth.users_file.empty());
  CHECK(config.policy.spf == "tag");
  CHECK(config.policy.dkim_verify == "tag");
  CHECK(config.policy.rdns == "tag");
  CHECK(config.policy.dmarc == "tag");
  REQUIRE(config.dkim_sign.size() == 1);
  CHECK(config.dkim_sign[0].domain == "example.test");
  CHECK(config.dkim_sign[0].selector == "s1");
  CHECK(config.dkim_sign[0].key == "keys/s1.pem");
}

TEST_CASE("An empty config gets the defaults", "[mta][config]") {
  const auto config = parse_config("", "empty.toml");
  CHECK(config.server.hostname == machine_hostname());
  CHECK(config.server.loops == 0);
  CHECK(config.server.shutdown_timeout == 10s);
  CHECK(config.listeners.empty());
  CHECK(config.queue.path == "var/queue");
  CHECK(config.relay.networks.empty());
  CHECK(config.relay.domains.empty());
  CHECK(config.delivery.port == 25);
  CHECK(config.delivery.tls == "opportunistic");
  CHECK(config.retry.initial == 5min);
  CHECK(config.retry.max_age == 120h);
  CHECK(config.metrics.listen == "127.0.0.1:9464");
  CHECK(config.admin.listen == "127.0.0.1:8025");
  CHECK(config.policy.spf == "off");
  CHECK(config.lines.empty());
  CHECK(config.where("tls.cert") == "empty.toml");
}

TEST_CASE("server.hostname defaults to the machine's own name", "[mta][config]") {
  // What gethostname() and the resolver make of it differ from machine to machine: a name,
  // lower-case, the same for every config.
  const std::string& machine = machine_hostname();
  CHECK_FALSE(machine.empty());
  CHECK(machine == relayq::dns::lower_case(machine));
  CHECK(&machine == &machine_hostname());  // looked up once
  CHECK(parse_config("[server]\nloops = 2\n", "test.toml").server.hostname == machine);
  CHECK(parse_config("[server]\nhostname = \"mx.test\"\n", "test.toml").server.hostname ==
        "mx.test");
}

TEST_CASE("Listener defaults and extension keys", "[mta][config]") {
  const auto config = parse_config(R"([[listener]]
[[listener]]
address = "[::1]:25"
command_timeout = "1m"
data_timeout = 30
min_data_rate = "1K"
max_message_size = 1000
[server]
loops = 4
shutdown_timeout = "500ms"
)",
                                   "t.toml");
  REQUIRE(config.listeners.size() == 2);
  CHECK(config.listeners[0].address == "127.0.0.1:2525");
  CHECK(config.listeners[0].host == "127.0.0.1");
  CHECK(config.listeners[0].port == 2525);
  CHECK(config.listeners[0].command_timeout == 5min);
  CHECK(config.listeners[0].data_timeout == 3min);
  CHECK(config.listeners[0].min_data_rate == 500);
  CHECK(config.listeners[0].max_message_size == 25u << 20);
  CHECK(config.listeners[1].host == "::1");
  CHECK(config.listeners[1].port == 25);
  CHECK(config.listeners[1].command_timeout == 1min);
  CHECK(config.listeners[1].data_timeout == 30s);
  CHECK(config.listeners[1].min_data_rate == 1024);
  CHECK(config.listeners[1].max_message_size == 1000);
  CHECK(config.server.loops == 4);
  CHECK(config.server.shutdown_timeout == 500ms);
}

TEST_CASE("Relay domains are lower-cased, hostnames validated", "[mta][config]") {
  const auto config = parse_config(R"([server]
hostname = "MX1.Example.Test"
[relay]
domains = ["Example.ORG", "b.example"]
networks = ["10.1.2.3/8"]
)",
                                   "t.toml");
  CHECK(config.server.hostname == "mx1.example.test");
  CHECK(config.relay.domains == std::vector<std::string>{"example.org", "b.example"});
  CHECK(config.relay.network_texts == std::vector<std::string>{"10.1.2.3/8"});
  CHECK(config.relay.networks[0].network.to_string() == "10.0.0.0");
}

TEST_CASE("Lines of keys are kept for errors found later", "[mta][config]") {
  const auto config = parse_config(R"([tls]
cert = ""

[[listener]]
address = "127.0.0.1:25"

[[listener]]
max_recipients = 5
)",
                                   "t.toml");
  CHECK(config.where("tls.cert") == "t.toml:2");
  CHECK(config.where("tls.key") == "t.toml:1");  // not set: its table
  CHECK(config.where("listener[0].address") == "t.toml:5");
  CHECK(config.where("listener[1].address") == "t.toml:7");  // a default: its [[listener]]
  CHECK(config.where("listener[1].max_recipients") == "t.toml:8");
  CHECK(config.where("admin.listen") == "t.toml");
}

TEST_CASE("TOML syntax errors carry the line", "[mta][config]") {
  CHECK(error_of("[server]\nhostname = \"a\"\nloops = \n") ==
        "test.toml:3: Error while parsing key-value pair: expected value, saw '\\n'");
  CHECK(error_of("[server]\n[server]\n") ==
        "test.toml:2: Error while parsing table header: cannot redefine existing table 'server'");
  CHECK(error_of("[queue]\npath = \"a\nb\"\n").starts_with("test.toml:2: "));
}

TEST_CASE("Unknown keys and sections are errors at their line", "[mta][config]") {
  CHECK(error_of("[server]\nhostname = \"a\"\nhost_name = \"b\"\n") ==
        "test.toml:3: unknown key 'server.host_name'");
  CHECK(error_of("\n[bogus]\nx = 1\n") == "test.toml:2: unknown key 'bogus'");
  CHECK(error_of("hostname = \"a\"\n") == "test.toml:1: unknown key 'hostname'");
  CHECK(error_of("[[listener]]\naddress = \"127.0.0.1:25\"\ntimeout = 5\n") ==
        "test.toml:3: unknown key 'listener.timeout'");
  CHECK(error_of("[server]\n[server.extra]\n") == "test.toml:2: unknown key 'server.extra'");
  CHECK(error_of("[relay]\nnetworks = []\n[relay.more]\nx = 1\n") ==
        "test.toml:3: unknown key 'relay.more'");
  CHECK(error_of("[[dkim.sign]]\ndomain = \"a.test\"\nselector = \"s\"\nkey = \"k\"\nalg = 1\n") ==
        "test.toml:5: unknown key 'dkim.sign.alg'");
  CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"mx:25\"\nport = 1\n") ==
        "test.toml:3: unknown key 'routes.a.test.port'");
  CHECK(error_of("[retry.domains.\"a.test\"]\ninitial = \"1m\"\nbogus = 1\n") ==
        "test.toml:3: unknown key 'retry.domains.a.test.bogus'");
  // The first one in the file, whatever the keys' order.
  CHECK(error_of("[admin]\nzzz = 1\naaa = 2\n") == "test.toml:2: unknown key 'admin.zzz'");
}

TEST_CASE("Values of the wrong type are errors at their line", "[mta][config]") {
  CHECK(error_of("[server]\nhostname = 5\n") == "test.toml:2: server.hostname: must be a string");
  CHECK(error_of("server = 1\n") == "test.toml:1: server: must be a table ([server])");
  CHECK(error_of("[listener]\naddress = \"127.0.0.1:25\"\n") ==
        "test.toml:1: listener: must be an array of tables ([[listener]])");
  CHECK(error_of("listener = [1]\n") == "test.toml:1: listener: must be a table");
  CHECK(error_of("[[listener]]\nproxy_protocol = \"no\"\n") ==
        "test.toml:2: listener.proxy_protocol: must be true or false");
  CHECK(error_of("[[listener]]\nmax_recipients = \"10\"\n") ==
        "test.toml:2: listener.max_recipients: must be an integer");
  CHECK(error_of("[relay]\nnetworks = \"10.0.0.0/8\"\n") ==
        "test.toml:2: relay.networks: must be an array of CIDR strings");
  CHECK(error_of("[relay]\nnetworks = [\n  \"10.0.0.0/8\",\n  8,\n]\n") ==
        "test.toml:4: relay.networks: must be a string");
  CHECK(error_of("[retry]\nfactor = \"2\"\n") == "test.toml:2: retry.factor: must be a number");
  CHECK(
      error_of("[[listener]]\nmax_message_size = 2.5\n") ==
      "test.toml:2: listener.max_message_size: must be a size: bytes, or a string like \"25MiB\"");
  CHECK(error_of("[retry]\ninitial = true\n") ==
        "test.toml:2: retry.initial: must be a duration: seconds, or a string like \"5m\"");
  CHECK(error_of("[routes]\n\"a.test\" = \"mx:25\"\n") ==
        "test.toml:2: routes.a.test: must be a table ([routes.a.test])");
}

TEST_CASE("Bad values are errors at their line", "[mta][config]") {
  SECTION("addresses") {
    CHECK(error_of("[[listener]]\naddress = \"127.0.0.1\"\n") ==
          "test.toml:2: listener.address: not an address: \"127.0.0.1\": expected host:port, or "
          "[IPv6]:port");
    CHECK(error_of("[[listener]]\naddress = \"::1:25\"\n") ==
          "test.toml:2: listener.address: an IPv6 address needs brackets: \"::1:25\": expected "
          "host:port, or [IPv6]:port");
    CHECK(error_of("[[listener]]\naddress = \"127.0.0.1:0\"\n") ==
          "test.toml:2: listener.address: not a port (1-65535): \"0\"");
    CHECK(error_of("[[listener]]\naddress = \"127.0.0.1:65536\"\n") ==
          "test.toml:2: listener.address: not a port (1-65535): \"65536\"");
    CHECK(error_of("[[listener]]\naddress = \"127.0.0.1:25x\"\n") ==
          "test.toml:2: listener.address: not a port (1-65535): \"25x\"");
    CHECK(error_of("[[listener]]\naddress = \"[127.0.0.1]:25\"\n") ==
          "test.toml:2: listener.address: not an IPv6 address: \"127.0.0.1\"");
    CHECK(error_of("[[listener]]\naddress = \"[::1]25\"\n") ==
          "test.toml:2: listener.address: not an address: \"[::1]25\": expected host:port, or "
          "[IPv6]:port");
    CHECK(error_of("[[listener]]\naddress = \"localhost:25\"\n") ==
          "test.toml:2: listener.address: not an IP address: \"localhost\" (expected ip:port or "
          "[ipv6]:port)");
    CHECK(error_of("[[listener]]\naddress = \"10.0.0.300:25\"\n") ==
          "test.toml:2: listener.address: not a host name or IP address: \"10.0.0.300\"");
    CHECK(error_of("[[listener]]\n[[listener]]\naddress = \"127.0.0.1:2525\"\n") ==
          "test.toml:3: listener.address: same address as the listener at test.toml:1");
    CHECK(error_of("[metrics]\nlisten = \"127.0.0.1\"\n")
              .starts_with("test.toml:2: metrics.listen: not an address"));
    CHECK(error_of("[admin]\nlisten = \"admin.test:8025\"\n") ==
          "test.toml:2: admin.listen: not an IP address: \"admin.test\" (expected ip:port or "
          "[ipv6]:port)");
    CHECK(error_of("[delivery]\nsmarthost = \"smart host:25\"\n") ==
          "test.toml:2: delivery.smarthost: not a host name or IP address: \"smart host\"");
    CHECK(error_of("[dns]\nservers = [\"192.0.2.53\"]\n")
              .starts_with("test.toml:2: dns.servers: not an address"));
    CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"mx.a.test\"\n")
              .starts_with("test.toml:2: routes.a.test.nexthop: not an address"));
  }
  SECTION("networks and domains") {
    CHECK(error_of("[relay]\nnetworks = [\n  \"127.0.0.0/8\",\n  \"10.0.0.0/33\",\n]\n") ==
          "test.toml:4: relay.networks: not a network: \"10.0.0.0/33\"");
    CHECK(error_of("[relay]\ndomains = [\"example.org\", \"bad domain\"]\n") ==
          "test.toml:2: relay.domains: not a domain name: \"bad domain\"");
    CHECK(error_of("[server]\nhostname = \"relay.test\\r\\nX: y\"\n")
              .starts_with("test.toml:2: server.hostname: not a domain name"));
    CHECK(error_of("[server]\nhostname = \"\"\n") ==
          "test.toml:2: server.hostname: not a domain name: \"\"");
    CHECK(error_of("\n[routes.\"a..test\"]\nnexthop = \"mx:25\"\n") ==
          "test.toml:2: routes.a..test: not a domain name: \"a..test\"");
    CHECK(error_of("[queue]\npath = \"\"\n") == "test.toml:2: queue.path: must not be empty");
  }
  SECTION("choices") {
    CHECK(error_of("[[listener]]\nmode = \"mx\"\n") ==
          "test.toml:2: listener.mode: must be \"relay\", \"submission\" or \"smtps\", not \"mx\"");
    CHECK(error_of("[delivery]\ntls = \"on\"\n") ==
          "test.toml:2: delivery.tls: must be \"off\", \"opportunistic\" or \"required\", not "
          "\"on\"");
    CHECK(error_of("[policy]\nspf = \"Reject\"\n") ==
          "test.toml:2: policy.spf: must be \"off\", \"tag\" or \"reject\", not \"Reject\"");
    CHECK(error_of("[policy]\ndkim_verify = \"reject\"\n") ==
          "test.toml:2: policy.dkim_verify: must be \"off\" or \"tag\", not \"reject\"");
    CHECK(error_of("[policy]\nrdns = \"reject\"\n") ==
          "test.toml:2: policy.rdns: must be \"off\", \"tag\" or \"require\", not \"reject\"");
  }
  SECTION("numbers") {
    CHECK(error_of("[retry]\nfactor = 0.5\n") ==
          "test.toml:2: retry.factor: must be between 1 and 1000");
    CHECK(error_of("[retry]\nfactor = nan\n") ==
          "test.toml:2: retry.factor: must be between 1 and 1000");
    CHECK(error_of("[retry]\njitter = 1.5\n") ==
          "test.toml:2: retry.jitter: must be between 0 and 1");
    CHECK(error_of("[retry]\njitter = -0.1\n") ==
          "test.toml:2: retry.jitter: must be between 0 and 1");
    CHECK(error_of("[delivery]\nport = 0\n") ==
          "test.toml:2: delivery.port: must be between 1 and 65535");
    CHECK(error_of("[delivery]\nport = 65536\n") ==
          "test.toml:2: delivery.port: must be between 1 and 65535");
    CHECK(
        error_of("[delivery]\nmax_connections_per_destination = 0\n") ==
        "test.toml:2: delivery.max_connections_per_destination: must be between 1 and 4294967295");
    CHECK(error_of("[[listener]]\nmax_recipients = 0\n") ==
          "test.toml:2: listener.max_recipients: must be between 1 and 4294967295");
    CHECK(error_of("[[listener]]\nmax_connections = 4294967296\n") ==
          "test.toml:2: listener.max_connections: must be between 1 and 4294967295");
    CHECK(error_of("[server]\nloops = -1\n") ==
          "test.toml:2: server.loops: must be between 0 and 1024");
  }
  SECTION("sizes and durations") {
    CHECK(error_of("[[listener]]\nmax_message_size = \"25XB\"\n") ==
          "test.toml:2: listener.max_message_size: not a size: \"25XB\": expected bytes, or a "
          "number with K, M, G, KiB, MiB or GiB");
    CHECK(error_of("[[listener]]\nmax_message_size = 0\n") ==
          "test.toml:2: listener.max_message_size: must be at least 1");
    // More than relayq can hold in memory and store as one value is an error, not a promise.
    CHECK(error_of("[[listener]]\nmax_message_size = 9223372036854775807\n") ==
          "test.toml:2: listener.max_message_size: must be at most 1073741824");
    CHECK(error_of("[[listener]]\nmax_message_size = \"2GiB\"\n") ==
          "test.toml:2: listener.max_message_size: must be at most 1073741824");
    CHECK(parse_config("[[listener]]\nmax_message_size = \"1GiB\"\n", "t.toml")
              .listeners[0]
              .max_message_size == 1u << 30);
    CHECK(error_of("[[listener]]\nmin_data_rate = -1\n") ==
          "test.toml:2: listener.min_data_rate: must not be negative");
    CHECK(error_of("[retry]\nmax_age = \"5 days\"\n") ==
          "test.toml:2: retry.max_age: not a duration: \"5 days\": expected seconds, or numbers "
          "with ms, s, m, h or d (\"1h30m\")");
    CHECK(error_of("[retry]\ninitial = \"0\"\n") == "test.toml:2: retry.initial: must not be 0");
    CHECK(error_of("[retry]\ninitial = -5\n") ==
          "test.toml:2: retry.initial: must not be negative");
    CHECK(error_of("[[listener]]\ncommand_timeout = 0\n") ==
          "test.toml:2: listener.command_timeout: must not be 0");
    CHECK(error_of("[retry]\ndelay_warning = 9223372036854775807\n") ==
          "test.toml:2: retry.delay_warning: is too large");
  }
  SECTION("tables") {
    CHECK(error_of("[[dkim.sign]]\ndomain = \"a.test\"\nkey = \"k.pem\"\n") ==
          "test.toml:1: dkim.sign.selector: missing");
    CHECK(error_of("[[dkim.sign]]\ndomain = \"a.test\"\nselector = \"s\"\nkey = \"\"\n") ==
          "test.toml:4: dkim.sign.key: must not be empty");
    CHECK(error_of("\n\n[routes.\"a.test\"]\n") == "test.toml:3: routes.a.test.nexthop: missing");
    CHECK(error_of("[retry.domains.\"a.test\"]\njitter = 2\n") ==
          "test.toml:2: retry.domains.a.test.jitter: must be between 0 and 1");
  }
}

TEST_CASE("Listener modes get what they need from [tls] and [auth]", "[mta][config]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"[[listener]]\nmode = \"submission\"\n",
       "test.toml:2: listener.mode: submission and smtps need auth.users_file or auth.dovecot"},
      {"[auth]\nusers_file = \"u\"\n[[listener]]\n[[listener]]\naddress = \"[::1]:465\"\n"
       "mode = \"smtps\"\nplaintext_auth = true\n",
       "test.toml:6: listener.mode: needs tls.cert and tls.key (AUTH is offered under TLS only, "
       "unless plaintext_auth = true)"},
      {"[auth]\nusers_file = \"u\"\n[[listener]]\nmode = \"submission\"\n",
       "test.toml:4: listener.mode: needs tls.cert and tls.key (AUTH is offered under TLS only, "
       "unless plaintext_auth = true)"},
      {"[tls]\ncert = \"c.pem\"\n", "test.toml:2: tls: cert and key go together"},
      {"[tls]\nkey = \"k.pem\"\n", "test.toml:2: tls: cert and key go together"},
      {"[tls]\nmin_version = \"TLSv1.1\"\n",
       "test.toml:2: tls.min_version: must be \"TLSv1.2\" or \"TLSv1.3\", not \"TLSv1.1\""},
      {"[routes.\"a.test\"]\nnexthop = \"h:25\"\ntls = \"always\"\n",
       "test.toml:3: routes.a.test.tls: must be \"off\", \"opportunistic\" or \"required\", "
       "not \"always\""},
  };
  for (const auto& [text, error] : cases) {
    INFO(text);
    CHECK(error_of(text) == error);
  }
  // Submission over plaintext on a trusted listener, and TLS with users for smtps.
  const auto plain = parse_config(
      "[auth]\nusers_file = \"u\"\n[[listener]]\nmode = \"submission\"\nplaintext_auth = true\n",
      "t.toml");
  CHECK(plain.listeners[0].mode == ListenerMode::submission);
  CHECK(plain.listeners[0].plaintext_auth);
  const auto smtps = parse_config(
      "[auth]\nusers_file = \"u\"\n[tls]\ncert = \"c\"\nkey = \"k\"\nmin_version = "
      "\"TLSv1.3\"\n[[listener]]\nmode = \"smtps\"\n[routes.\"a.test\"]\nnexthop = \"h:25\"\n"
      "tls = \"required\"\ntls_ca = \"ca.pem\"\n",
      "t.toml");
  CHECK(smtps.listeners[0].mode == ListenerMode::smtps);
  CHECK(smtps.tls.min_version == "TLSv1.3");
  CHECK(smtps.routes.at("a.test").tls == "required");
  CHECK(smtps.routes.at("a.test").tls_ca == "ca.pem");
}

TEST_CASE("[auth] dovecot: a unix socket or an IP address, never with users_file",
          "[mta][config][auth]") {
  const auto by_socket = parse_config(
      "[auth]\ndovecot = \"unix:/run/dovecot/auth-client\"\n[[listener]]\nmode = "
      "\"submission\"\nplaintext_auth = true\n",
      "t.toml");
  REQUIRE(by_socket.auth.dovecot);
  CHECK(by_socket.auth.dovecot->socket_path == "/run/dovecot/auth-client");
  CHECK(by_socket.auth.dovecot->to_string() == "unix:/run/dovecot/auth-client");
  CHECK(by_socket.auth.users_file.empty());
  const auto by_tcp = parse_config("[auth]\ndovecot = \"[::1]:12345\"\n", "t.toml");
  REQUIRE(by_tcp.auth.dovecot);
  CHECK(by_tcp.auth.dovecot->socket_path.empty());
  CHECK(by_tcp.auth.dovecot->port == 12345);
  CHECK(by_tcp.auth.dovecot->to_string() == "[::1]:12345");
  CHECK_FALSE(parse_config("", "t.toml").auth.dovecot);
  CHECK_FALSE(parse_config("[auth]\ndovecot = \"\"\nusers_file = \"u\"\n", "t.toml").auth.dovecot);

  const std::pair<std::string_view, std::string_view> cases[] = {
      {"[auth]\nusers_file = \"/etc/relayq/users\"\ndovecot = \"127.0.0.1:12345\"\n",
       "test.toml:3: auth.dovecot: set auth.users_file or auth.dovecot, not both"},
      {"[auth]\ndovecot = \"127.0.0.1:12345\"\n\nusers_file = \"u\"\n",
       "test.toml:2: auth.dovecot: set auth.users_file or auth.dovecot, not both"},
      {"[auth]\ndovecot = \"unix:run/auth-client\"\n",
       "test.toml:2: auth.dovecot: not an absolute socket path: \"unix:run/auth-client\"; expected "
       "\"unix:/path/to/socket\" or \"ip:port\""},
      {"[auth]\ndovecot = \"unix:\"\n",
       "test.toml:2: auth.dovecot: not an absolute socket path: \"unix:\"; expected "
       "\"unix:/path/to/socket\" or \"ip:port\""},
      {"[auth]\ndovecot = \"dovecot.local:12345\"\n",
       "test.toml:2: auth.dovecot: not an IP address: \"dovecot.local\" (expected ip:port or "
       "[ipv6]:port); expected \"unix:/path/to/socket\" or \"ip:port\""},
      {"[auth]\ndovecot = \"/run/dovecot/auth-client\"\n",
       "test.toml:2: auth.dovecot: not an address: \"/run/dovecot/auth-client\": expected "
       "host:port, or [IPv6]:port; expected \"unix:/path/to/socket\" or \"ip:port\""},
      {"[auth]\ndovecot = \"127.0.0.1:0\"\n",
       "test.toml:2: auth.dovecot: not a port (1-65535): \"0\"; expected \"unix:/path/to/socket\" "
       "or \"ip:port\""},
      {"[auth]\ndovecot = 12345\n", "test.toml:2: auth.dovecot: must be a string"},
  };
  for (const auto& [text, error] : cases) {
    INFO(text);
    CHECK(error_of(text) == error);
  }
  CHECK(error_of("[auth]\ndovecot = \"unix:/" + std::string(107, 'a') + "\"\n") ==
        "test.toml:2: auth.dovecot: a unix socket's path has at most 107 bytes: \"unix:/" +
            std::string(107, 'a') + "\"");
  CHECK(parse_config("[auth]\ndovecot = \"unix:/" + std::string(106, 'a') + "\"\n", "t.toml")
            .auth.dovecot->socket_path.size() == 107);
}

TEST_CASE("Policy modes take only their choices", "[mta][config]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"[policy]\nspf = \"require\"\n", "test.toml:2: policy.spf: "},
      {"[policy]\ndkim_verify = \"reject\"\n", "test.toml:2: policy.dkim_verify: "},
      {"[policy]\nrdns = \"reject\"\n", "test.toml:2: policy.rdns: "},
      {"[policy]\ndmarc = \"reject\"\n", "test.toml:2: policy.dmarc: "},
      {"\n[[dkim.sign]]\ndomain = \"a.test\"\nselector = \"s\"\n", "test.toml:2: "},
  };
  for (const auto& [text, error] : cases) {
    INFO(text);
    CHECK(error_of(text).starts_with(error));
  }
}

TEST_CASE("parse_size reads bytes, K/M/G and KiB/MiB/GiB", "[mta][config]") {
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("1000") == 1000);
  CHECK(parse_size("512B") == 512);
  CHECK(parse_size("512K") == 512 * 1024);
  CHECK(parse_size("512k") == 512 * 1024);
  CHECK(parse_size("1KB") == 1024);
  CHECK(parse_size("1KiB") == 1024);
  CHECK(parse_size("25M") == 25u << 20);
  CHECK(parse_size("25MB") == 25u << 20);
  CHECK(parse_size("25MiB") == 25u << 20);
  CHECK(parse_size("25 MiB") == 25u << 20);
  CHECK(parse_size("1G") == 1u << 30);
  CHECK(parse_size("4GiB") == 4ull << 30);
  CHECK(parse_size("18446744073709551615") == UINT64_MAX);
  for (const char* bad : {"", "M", "-1", "+1", " 1", "1 ", "1.5M", "1T", "1iB", "1Mi", "1MiBs",
                          "0x10", "18446744073709551616", "17179869184G"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_size(bad), std::invalid_argument);
  }
}

TEST_CASE("parse_duration reads seconds and ms/s/m/h/d", "[mta][config]") {
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("45") == 45s);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("4h") == 4h);
  CHECK(parse_duration("5d") == 120h);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("1m500ms") == 60500ms);
  CHECK(parse_duration("0s") == 0ms);
  for (const char* bad : {"", "s", "-5m", "5 m", "5M", "5w", "1.5h", "5mm", "m5", "5m ", "1h30",
                          "106751991167301d", "9223372036854775808ms"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_duration(bad), std::invalid_argument);
  }
}

TEST_CASE("parse_host_port reads host:port and [IPv6]:port", "[mta][config]") {
  CHECK(parse_host_port("127.0.0.1:25").host == "127.0.0.1");
  CHECK(parse_host_port("127.0.0.1:25").port == 25);
  CHECK(parse_host_port("[2001:db8::1]:587").host == "2001:db8::1");
  CHECK(parse_host_port("[2001:db8::1]:587").port == 587);
  CHECK(parse_host_port("mx.Example-1.test:65535").host == "mx.Example-1.test");
  for (const char* bad :
       {"", ":25", "host", "host:", "host:0", "host:-1", "host:+1", "[::1]", "[::1]:", "[::1",
        "::1:25", "[1.2.3.4]:25", "a b:25", "1.2.3.4.5:25", "host:25:25"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_host_port(bad), std::invalid_argument);
  }
}

TEST_CASE("load_config reads files and names the unreadable ones", "[mta][config]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("relayq-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "relayq.toml").string();
  std::ofstream(path) << "[server]\nhostname = \"file.test\"\nloops = \"x\"\n";

  CHECK_THROWS_WITH(load_config(path), path + ":3: server.loops: must be an integer");
  std::ofstream(path) << "[server]\nhostname = \"file.test\"\n";
  CHECK(load_config(path).server.hostname == "file.test");
  CHECK(load_config(path).path == path);

  const auto missing = (dir / "missing.toml").string();
  CHECK_THROWS_WITH(load_config(missing),
                    missing + ": cannot read file: No such file or directory");
  CHECK_THROWS_WITH(load_config(dir.string()), dir.string() + ": cannot read file: Is a directory");
  std::filesystem::remove_all(dir);
}

TEST_CASE("LMTP next hops: host:port or a unix socket, verify_recipients only there", "[config]") {
  const auto config = parse_config(
      "[routes.\"a.test\"]\nnexthop = \"lmtp:127.0.0.1:24\"\nverify_recipients = true\n"
      "[routes.\"b.test\"]\nnexthop = \"lmtp:unix:/run/dovecot/lmtp\"\ntls = \"off\"\n",
      "test.toml");
  CHECK(config.routes.at("a.test").verify_recipients);
  CHECK_FALSE(config.routes.at("b.test").verify_recipients);
  const Nexthop tcp = parse_nexthop("lmtp:[::1]:24");
  CHECK(tcp.lmtp);
  CHECK(tcp.address.host == "::1");
  CHECK(tcp.address.port == 24);
  const Nexthop unix_socket = parse_nexthop("lmtp:unix:/run/dovecot/lmtp");
  CHECK(unix_socket.unix_path == "/run/dovecot/lmtp");
  CHECK_FALSE(parse_nexthop("mx.test:25").lmtp);

  CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"lmtp:unix:run/lmtp\"\n")
            .starts_with("test.toml:2: routes.a.test.nexthop: not a unix socket path"));
  CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"lmtp:unix:/" + std::string(107, 'x') + "\"\n")
            .starts_with("test.toml:2: routes.a.test.nexthop: not a unix socket path"));
  CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"lmtp:unix:/run/lmtp\"\ntls = \"required\"\n") ==
        "test.toml:3: routes.a.test.tls: a unix socket next hop takes no TLS (tls = \"off\" or "
        "unset)");
  CHECK(error_of("[routes.\"a.test\"]\nnexthop = \"10.0.0.1:25\"\nverify_recipients = true\n") ==
        "test.toml:3: routes.a.test.verify_recipients: verify_recipients needs an LMTP next hop "
        "(\"lmtp:...\")");
}

TEST_CASE("[[reply_rule]]: a category and at least one condition, in file order", "[config]") {
  const auto config = parse_config(
      "[[reply_rule]]\ncategory = \"rate_limit\"\ncode = \"45\"\nenhanced = \"4.7.\"\n"
      "text = \"Slow Down\"\n"
      "[[reply_rule]]\ncategory = \"network\"\ncode = \"0\"\n"
      "[[reply_rule]]\ncategory = \"bad_mailbox\"\nenhanced = \"\"\ntext = \"no mailbox here\"\n",
      "test.toml");
  REQUIRE(config.reply_rules.size() == 3);
  CHECK(config.reply_rules[0] == ReplyRule{ReplyCategory::rate_limit, "45", "4.7.", "Slow Down"});
  CHECK(config.reply_rules[1] == ReplyRule{ReplyCategory::network, "0", "", ""});
  CHECK(config.reply_rules[2] == ReplyRule{ReplyCategory::bad_mailbox, "", "", "no mailbox here"});
  CHECK(parse_config("", "test.toml").reply_rules.empty());

  CHECK(error_of("[[reply_rule]]\ncode = \"4\"\n") == "test.toml:1: reply_rule.category: missing");
  CHECK(error_of("[[reply_rule]]\ncategory = \"spam\"\ntext = \"x\"\n") ==
        "test.toml:2: reply_rule.category: must be one of bad_mailbox, bad_domain, mailbox_full, "
        "message_too_big, policy, reputation, rate_limit, protocol, network, other; not "
        "\"spam\"");
  CHECK(error_of("\n[[reply_rule]]\ncategory = \"policy\"\ntext = \"\"\n") ==
        "test.toml:2: reply_rule: needs at least one of code, enhanced and text");
  CHECK(error_of("[[reply_rule]]\ncategory = \"policy\"\ncode = \"4xx\"\n") ==
        "test.toml:3: reply_rule.code: must be up to 3 digits of a reply code, not \"4xx\"");
  CHECK(error_of("[[reply_rule]]\ncategory = \"policy\"\ncode = \"5500\"\n") ==
        "test.toml:3: reply_rule.code: must be up to 3 digits of a reply code, not \"5500\"");
  CHECK(error_of("[[reply_rule]]\ncategory = \"policy\"\nenhanced = \"5.x.1\"\n") ==
        "test.toml:3: reply_rule.enhanced: must be digits and dots, like \"5.1.1\" or \"4.7.\", "
        "not \"5.x.1\"");
  CHECK(error_of("[[reply_rule]]\ncategory = \"policy\"\ntext = 5\n") ==
        "test.toml:3: reply_rule.text: must be a string");
  CHECK(error_of("[[reply_rule]]\ncategory = \"policy\"\ntext = \"x\"\nclass = \"5\"\n") ==
        "test.toml:4: unknown key 'reply_rule.class'");
}
TEST_CASE("Rates are N per second, minute or hour", "[config][shaping]") {
  CHECK(parse_rate("50/s") == Approx(50));
  CHECK(parse_rate("3000/m") == Approx(50));
  CHECK(parse_rate("36000/h") == Approx(10));
  for (const char* bad : {"0/s", "50", "50/d", "/s", "-1/s", "1.5/s", "50/ s"})
    CHECK_THROWS_AS(parse_rate(bad), std::invalid_argument);
}

TEST_CASE("[shaping] keys are checked", "[config][shaping]") {
  CHECK(error_of("[shaping.\"gmail.com\"]\nmax_message_rate = \"50\"\n") ==
        "test.toml:2: shaping.gmail.com.max_message_rate: not a rate: \"50\": expected a "
        "number of messages per s, m or h (\"50/s\")");
  CHECK(error_of("[shaping.\"gmail.com\"]\nmax_connections = 0\n") ==
        "test.toml:2: shaping.gmail.com.max_connections: must be between 1 and 4294967295");
  CHECK(error_of("[shaping.\"gmail.com\"]\nmax_rate = \"5/s\"\n") ==
        "test.toml:2: unknown key 'shaping.gmail.com.max_rate'");
  CHECK(error_of("[delivery]\nslowdown_factor = 0\n") ==
        "test.toml:2: delivery.slowdown_factor: must be between 0.01 and 1");
  // [delivery] has no max_connections of its own: it is max_connections_per_destination.
  CHECK(error_of("[delivery]\nmax_connections = 3\n") ==
        "test.toml:2: unknown key 'delivery.max_connections'");
  const Config config = parse_config(
      "[delivery]\nmax_connections_per_destination = 9\nrecover_after = 5\n"
      "[shaping.\"Gmail.COM\"]\nmax_message_rate = \"1/s\"\n",
      "test.toml");
  CHECK(config.delivery.recover_after == 5);
  REQUIRE(config.shaping.contains("gmail.com"));
  CHECK(config.shaping.at("gmail.com").max_connections == 9);  // [delivery]'s
}
