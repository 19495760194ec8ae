// The relayq daemon: opens the queue, the listeners and the metrics endpoint, runs the event
// loops, and stops gracefully on SIGTERM/SIGINT.
#pragma once

#include "mta/config/config.hpp"

namespace relayq::mta {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread it starts from now
// on, until run_daemon() handles them: a signal sent as soon as the port opens is then acted
// on rather than fatal. Call it before any thread starts (the log thread too).
void block_daemon_signals();

// Runs until SIGTERM or SIGINT. Returns the process exit code (0 after a clean stop, 1 when
// something could not be started).
int run_daemon(const Config& config);

}  // namespace relayq::mta
