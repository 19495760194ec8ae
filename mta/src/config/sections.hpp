// The readers of the config file's tables (sections.cpp), one per table, for the walk in
// reader.cpp. Run on the caller's thread: the main thread, at start and at SIGHUP reload.
// Each fills what the file sets and leaves the defaults; a bad value is a ConfigError FILE:LINE.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/section.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta::config_reader {

void read_server(Section& s, Config::Server& server);
// `config` holds the listeners read so far.
void read_listener(Section& s, ListenerConfig& listener, const Config& config);
void read_queue(Section& s, Config::Queue& queue);
void read_relay(Section& s, Config::Relay& relay);
void read_delivery(Section& s, Config::Delivery& delivery);
// [routes."name"]: the route for the domain `name`.
void read_route(Section& s, std::string_view name, std::map<std::string, RouteConfig>& routes);
// [shaping."name"]: a domain's, or ("mx:suffix") an MX host set's; after [delivery].
void read_shaping(Section& s, std::string_view name, Config& config);
void read_retry(Section& s, Config& config);
void read_dns(Section& s, Config::Dns& dns);
void read_metrics(Section& s, Config::Metrics& metrics);
void read_log(Section& s, Config::Log& log);
void read_admin(Section& s, Config::Admin& admin);
void read_tls(Section& s, Config::Tls& tls);
void read_auth(Section& s, Config::Auth& auth);
void read_policy(Section& s, Config::Policy& policy);
void read_dkim(Section& s, std::vector<DkimSignConfig>& signers);
// One [[reply_rule]], added to `rules`.
void read_reply_rule(Section& s, std::vector<ReplyRule>& rules);

}  // namespace relayq::mta::config_reader
