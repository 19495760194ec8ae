// Links every object of relayq_smtp (whole archive) with only the libraries relayq_smtp
// declares. Building this program is the check; running it makes a real session to show the
// cores work without an event loop, a logger or a clock of their own.
#include <cstdio>
#include <memory>

#include "mta/smtp/server_session.hpp"

int main() {
  auto config = std::make_shared<relayq::mta::ServerSessionConfig>();
  config->wall_clock_ms = [] { return std::int64_t{0}; };
  relayq::mta::ServerSession session(config, relayq::mta::PeerInfo{});
  session.start(0);
  session.receive("QUIT\r\n", 0);
  const std::string output = session.take_output();
  std::printf("%s", output.c_str());
  return session.closed() && output.starts_with("220 ") ? 0 : 1;
}
