// What the running config means for sessions and delivery: the immutable snapshots that the
// listeners and the engines read, built at start (lifecycle.cpp) and at each reload (reload.cpp).
#pragma once

#include <memory>

#include "mta/config/config.hpp"
#include "mta/daemon/dkim_keys.hpp"
#include "mta/delivery/engine.hpp"
#include "mta/inbound/connection.hpp"
#include "mta/net/tls_context.hpp"
#include "mta/smtp/server_session.hpp"
#include "policy/password_checker.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// The files [tls], [auth] and [[dkim.sign]] name (or [auth]'s Dovecot), loaded once for every
// listener. Throws ConfigError ("FILE:LINE: tls.cert PATH: why"): a start or a reload that
// cannot read them fails whole.
struct InboundFiles {
  std::shared_ptr<const net::TlsContext> tls;  // null without [tls]
  // [auth] users_file or dovecot; null without either (no AUTH).
  std::shared_ptr<const policy::PasswordChecker> passwords;
  std::shared_ptr<const PolicySettings> policy;  // [policy] with the signing keys
};
InboundFiles load_inbound_files(const Config& config);

// What the connections of one listener start with. Sessions take their ids from `store`,
// which must outlive them.
std::shared_ptr<const ListenerSettings> listener_settings_for(const Config& config,
                                                              const ListenerConfig& listener,
                                                              queue::Store& store,
                                                              const InboundFiles& files);

// Everything the engines read for delivery. Throws ConfigError when a tls_ca does not load.
std::shared_ptr<const DeliverySettings> delivery_settings_for(const Config& config);

}  // namespace relayq::mta
