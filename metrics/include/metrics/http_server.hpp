// An HTTP endpoint on cpp-httplib that serves on its own threads until destroyed: the set-up
// the metrics exposer and the admin API share (address, socket options, keep-alive, a stop
// that cannot be missed). Routes are added before start(); handlers run on httplib's threads.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace relayq::metrics {

class HttpServer {
 public:
  // `name` starts every error message: "metrics", "admin API".
  explicit HttpServer(std::string name);
  // Stops accepting, lets requests in progress end, and joins the threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes, handlers and limits; before start().
  httplib::Server& server() { return server_; }
  // Binds `listen` ("ip:port" or "[ipv6]:port"; port 0 picks a free one) and serves. Throws
  // std::runtime_error "NAME: cannot listen on LISTEN: why".
  void start(const std::string& listen);
  std::uint16_t port() const { return port_; }

 private:
  std::string name_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> accept_loop_ended_{false};
  std::uint16_t port_ = 0;
};

}  // namespace relayq::metrics
