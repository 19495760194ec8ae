// HttpServer: bind, serve on a thread, stop. Constructed and destroyed on the caller's thread.
#include "metrics/http_server.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace relayq::metrics {

namespace {

// Only SO_REUSEADDR: httplib's default adds SO_REUSEPORT, with which a second relayq on the
// same port would share it silently instead of failing to start.
void set_socket_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

HttpServer::HttpServer(std::string name) : name_(std::move(name)) {
  server_.set_socket_options(set_socket_options);
  // An idle kept-alive connection holds a worker, and so delays shutdown, this long.
  server_.set_keep_alive_timeout(2);
}

HttpServer::~HttpServer() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::start(const std::string& listen) {
  const auto fail = [&](const std::string& why) {
    return std::runtime_error(name_ + ": cannot listen on " + listen + ": " + why);
  };
  // The config has validated the form; the port alone is checked again here.
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw fail("not an ip:port address");
  std::string host = listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) throw fail("not an ip:port address");
  errno = 0;
  const int bound =
      port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw fail(errno != 0 ? std::strerror(errno) : "bind failed");
  port_ = static_cast<std::uint16_t>(bound);
  thread_ = std::thread([this] {
    server_.listen_after_bind();
    accept_loop_ended_ = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that the
  // destructor cannot miss it.
  while (!server_.is_running() && !accept_loop_ended_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace relayq::metrics
