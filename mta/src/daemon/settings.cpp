// The session and delivery snapshots of a config (declared in settings.hpp). Called on the main
// thread; each call builds a fresh snapshot that nothing changes afterwards, so loops share it.
#include "daemon/settings.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mta/common/ascii.hpp"
#include "mta/delivery/router.hpp"
#include "mta/smtp/client_session.hpp"
#include "policy/dovecot_auth.hpp"
#include "policy/relay_rules.hpp"
#include "policy/users_file.hpp"
#include "queue/clock.hpp"
#include "queue/retry_policy.hpp"

namespace relayq::mta {

InboundFiles load_inbound_files(const Config& config) {
  InboundFiles files;
  if (!config.tls.cert.empty()) {
    try {
      files.tls =
          net::TlsContext::server({.cert = config.tls.cert,
                                   .key = config.tls.key,
                                   .min_version = net::parse_tls_version(config.tls.min_version),
                                   .ciphers = config.tls.ciphers});
    } catch (const net::TlsError& error) {
      throw ConfigError(config.where("tls.cert") + ": " + error.what());
    }
  }
  if (!config.auth.users_file.empty()) {
    try {
      files.passwords = policy::UsersFile::load(config.auth.users_file);
    } catch (const policy::UsersFileError& error) {
      throw ConfigError(config.where("auth.users_file") + ": auth.users_file: " + error.what());
    }
  }
  // Nothing to load: whether Dovecot answers is up to each check.
  if (config.auth.dovecot)
    files.passwords = std::make_shared<const policy::DovecotAuth>(*config.auth.dovecot);
  auto policy = std::make_shared<PolicySettings>();
  const Config::Policy& modes = config.policy;
  policy->spf = modes.spf == "reject" ? SpfMode::reject
                : modes.spf == "tag"  ? SpfMode::tag
                                      : SpfMode::off;
  policy->rdns = modes.rdns == "require" ? RdnsMode::require
                 : modes.rdns == "tag"   ? RdnsMode::tag
                                         : RdnsMode::off;
  policy->dkim_verify = modes.dkim_verify == "tag";
  policy->dmarc = modes.dmarc == "tag";
  policy->signers = load_dkim_signers(config);
  files.policy = std::move(policy);
  return files;
}

std::vector<std::shared_ptr<const policy::DkimSigner>> load_dkim_signers(const Config& config) {
  std::vector<std::shared_ptr<const policy::DkimSigner>> signers;
  for (std::size_t i = 0; i < config.dkim_sign.size(); ++i) {
    const DkimSignConfig& sign = config.dkim_sign[i];
    const std::string key = "dkim.sign[" + std::to_string(i) + "]";
    try {
      signers.push_back(policy::DkimSigner::load(sign.domain, sign.selector, sign.key));
    } catch (const std::runtime_error& error) {
      throw ConfigError(config.where(key + ".key") + ": " + key + ".key: " + error.what());
    }
  }
  return signers;
}

std::shared_ptr<const ListenerSettings> listener_settings_for(const Config& config,
                                                              const ListenerConfig& listener,
                                                              queue::Store& store,
                                                              const InboundFiles& files) {
  auto session = std::make_shared<ServerSessionConfig>();
  session->hostname = config.server.hostname;
  session->listener_name = listener.address;
  session->max_message_size = listener.max_message_size;
  session->max_header_size = listener.max_header_size;
  session->max_recipients = listener.max_recipients;
  session->max_errors = listener.max_errors;
  session->max_junk_commands = listener.max_junk_commands;
  session->command_timeout = listener.command_timeout;
  session->data_timeout = listener.data_timeout;
  session->min_data_rate = listener.min_data_rate;
  session->relay = std::make_shared<policy::RelayRules>(config.relay.networks, config.relay.domains,
                                                        config.relay.allow_untrusted_routing);
  session->next_id = [&store] { return store.next_id(); };
  session->wall_clock_ms = queue::wall_clock_ms;
  const bool smtps = listener.mode == ListenerMode::smtps;
  session->starttls = files.tls != nullptr && !smtps;
  session->auth = files.passwords != nullptr;
  session->auth_without_tls = listener.plaintext_auth;
  session->auth_required = listener.mode != ListenerMode::relay;
  session->check_senders = files.policy->checks_senders();
  std::vector<std::string> verified;
  for (const auto& [domain, route] : config.routes)
    if (route.verify_recipients) verified.push_back(domain);
  if (!verified.empty()) {
    session->verifies_recipients = [verified](std::string_view domain) {
      return std::any_of(verified.begin(), verified.end(), [domain](const std::string& ours) {
        return equals_ignore_case(ours, domain);
      });
    };
  }
  return std::make_shared<const ListenerSettings>(ListenerSettings{
      .session = std::move(session),
      .tls = files.tls,
      .passwords = files.passwords,
      .implicit_tls = smtps,
      .proxy_protocol = listener.proxy_protocol,
      .policy = files.policy,
      .client_limits = {.connections = listener.max_connections_per_client,
                        .per_minute = listener.max_connections_per_client_per_minute},
  });
}

namespace {

// A client TLS context for each CA file that the config names (and "" for none).
std::map<std::string, std::shared_ptr<const net::TlsContext>> client_tls_contexts(
    const Config& config) {
  const auto min_version = net::parse_tls_version(config.tls.min_version);
  std::map<std::string, std::shared_ptr<const net::TlsContext>> contexts;
  const auto add = [&](const std::string& ca, const std::string& key) {
    if (contexts.contains(ca)) return;
    try {
      contexts.emplace(ca, net::TlsContext::client({.min_version = min_version, .ca_file = ca}));
    } catch (const net::TlsError& error) {
      throw ConfigError(config.where(key) + ": " + error.what());
    }
  };
  add("", "delivery");
  add(config.delivery.tls_ca, "delivery.tls_ca");
  for (const auto& [domain, route] : config.routes)
    add(route.tls_ca, "routes." + domain + ".tls_ca");
  return contexts;
}

}  // namespace

std::shared_ptr<const DeliverySettings> delivery_settings_for(const Config& config) {
  std::array<std::array<std::shared_ptr<const ClientSessionConfig>, 3>, 2> clients;
  for (const bool lmtp : {false, true}) {
    for (const TlsPolicy policy : {TlsPolicy::off, TlsPolicy::opportunistic, TlsPolicy::required}) {
      auto client = std::make_shared<ClientSessionConfig>();
      client->helo_name = config.server.hostname;
      client->lmtp = lmtp;
      client->tls = policy;
      clients[lmtp ? 1 : 0][static_cast<std::size_t>(policy)] = std::move(client);
    }
  }
  auto settings = std::make_shared<DeliverySettings>(DeliverySettings{
      .hostname = config.server.hostname,
      .router = Router(config),
      .retry = queue::RetryPolicies(config.retry,
                                    {config.retry_domains.begin(), config.retry_domains.end()}),
      .clients = std::move(clients),
      .tls_contexts = client_tls_contexts(config),
      .resolver = {},
      .timeouts = {},
      .classifier = ReplyClassifier(config.reply_rules),
  });
  settings->resolver.servers = config.dns.servers;
  return settings;
}

}  // namespace relayq::mta
