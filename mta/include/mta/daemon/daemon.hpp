// The relayq daemon: opens the queue, the listeners and the metrics endpoint, runs the event
// loops, and stops gracefully on SIGTERM/SIGINT.
#pragma once

#include "mta/config/config.hpp"

namespace relayq::mta {

// Runs until SIGTERM or SIGINT. Returns the process exit code (0 after a clean stop, 1 when
// something could not be started).
int run_daemon(const Config& config);

}  // namespace relayq::mta
