// What the running config means for sessions and delivery: the immutable snapshots that the
// listeners and the engines read, built at start (lifecycle.cpp) and at each reload (reload.cpp).
#pragma once

#include <memory>

#include "mta/config/config.hpp"
#include "mta/delivery/engine.hpp"
#include "mta/smtp/server_session.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// The sessions of one listener. They take their ids from `store`, which must outlive them.
std::shared_ptr<const ServerSessionConfig> session_config_for(const Config& config,
                                                              const ListenerConfig& listener,
                                                              queue::Store& store);

// Everything the engines read for delivery.
std::shared_ptr<const DeliverySettings> delivery_settings_for(const Config& config);

}  // namespace relayq::mta
