// The admin HTTP API on admin.listen: the queue listed, shown, counted and changed, for
// `relayq queue` and for scripts.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mta/admin/queue_admin.hpp"

namespace relayq::mta {

// Endpoints (JSON bodies; failures as {"error": "..."} with 400, 401, 404, 409, 500 or 504):
//   GET    /healthz                  "ok" (never asks for the token: readiness probes)
//   GET    /v1/queue                 every message, streamed as NDJSON, one line each
//   GET    /v1/queue/ID              one message, with every recipient's attempt history
//   GET    /v1/stats                 counts by state and destination domain, oldest age
//   POST   /v1/queue/ID/hold|release|retry, DELETE /v1/queue/ID, POST /v1/queue/retry (all)
// With a non-empty token every other request needs "Authorization: Bearer <token>".
class AdminServer {
 public:
  // Listens on `listen` ("ip:port", "[ipv6]:port"; port 0 picks a free one) and serves on its
  // own threads until destroyed. Throws std::runtime_error naming the address when it cannot
  // listen. A change that `admin` has not completed within `change_timeout` is answered 504.
  AdminServer(const std::string& listen, std::string token, QueueAdmin& admin,
              std::chrono::milliseconds change_timeout = std::chrono::seconds(30));
  // Stops listening, cuts listings short and answers waiting changes 503, then joins the
  // threads. Destroy it before whatever `admin` needs to complete changes (the loops).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  std::uint16_t port() const;  // the port it listens on

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::mta
