// The admin HTTP API on cpp-httplib: routes, the bearer token, the streamed listing, and
// changes awaited from the daemon.
#include "mta/admin/server.hpp"

#include <httplib.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string_view>

#include "admin/stats.hpp"
#include "metrics/http_server.hpp"
#include "mta/admin/json.hpp"
#include "queue/clock.hpp"

namespace relayq::mta {

namespace {

using httplib::Request;
using httplib::Response;

constexpr auto kJson = "application/json";
constexpr std::size_t kStreamChunk = 64 * 1024;  // NDJSON bytes gathered per socket write
constexpr auto kStopPoll = std::chrono::milliseconds(50);

void reply(Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body) + "\n", kJson);
}

void reply_error(Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(error_body(message) + "\n", kJson);
}

// Compares without stopping at the first difference, so response times do not reveal how
// much of a guessed token was right.
bool same_secret(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
  }
  return difference == 0;
}

struct Change {
  void (QueueAdmin::*start)(queue::MessageId, QueueAdmin::Done);
  const char* result;     // the word in the success body
  const char* unchanged;  // why nothing changed, when the daemon gives no detail
};

constexpr Change kHold{&QueueAdmin::hold, "held", "is already held"};
constexpr Change kRelease{&QueueAdmin::release, "released", "is not held"};
constexpr Change kRetry{&QueueAdmin::retry, "retried", "has nothing to retry"};
constexpr Change kRemove{&QueueAdmin::remove, "deleted", "is already gone"};

}  // namespace

struct AdminServer::Impl {
  Impl(QueueAdmin& queue_admin, std::string bearer_token, std::chrono::milliseconds timeout)
      : admin(queue_admin), token(std::move(bearer_token)), change_timeout(timeout) {}

  void add_routes();
  bool authorized(const Request& req) const;
  std::optional<queue::MessageId> message_id(const Request& req, Response& res) const;
  void list(Response& res);
  bool stream_queue(httplib::DataSink& sink);
  void show(const Request& req, Response& res);
  void stats(Response& res);
  void change(const Request& req, Response& res, const Change& change);
  void retry_all(Response& res);

  // Starts an asynchronous change and waits for its completion, which gets a T. Answers 503
  // (stopping) or 504 (too slow) itself and returns nullopt then.
  template <typename T, typename Start>
  std::optional<T> await(Start&& start, Response& res);

  QueueAdmin& admin;
  const std::string token;
  const std::chrono::milliseconds change_timeout;
  std::atomic<bool> stopping{false};
  metrics::HttpServer http{"admin API"};
  httplib::Server& server = http.server();
};

bool AdminServer::Impl::authorized(const Request& req) const {
  constexpr std::string_view kBearer = "Bearer ";
  const auto header = req.get_header_value("Authorization");
  return std::string_view(header).starts_with(kBearer) &&
         same_secret(std::string_view(header).substr(kBearer.size()), token);
}

std::optional<queue::MessageId> AdminServer::Impl::message_id(const Request& req,
                                                              Response& res) const {
  const std::string text = req.matches[1];
  const auto id = queue::parse_id(text);
  if (!id) reply_error(res, 400, "not a message id: " + text + " (16 hex digits)");
  return id;
}

void AdminServer::Impl::list(Response& res) {
  // The provider runs after this handler returns, on the same thread, and writes the whole
  // queue in one call: the store is walked once, with one chunk of lines in memory. A listing
  // cut short (shutdown, a read error) ends without the last chunk, so the client sees an
  // error rather than a short list that looks complete. httplib does not catch exceptions
  // thrown from a provider.
  const auto provide = [this](std::size_t, httplib::DataSink& sink) {
    try {
      return stream_queue(sink);
    } catch (const std::exception&) {
      return false;
    }
  };
  res.set_chunked_content_provider("application/x-ndjson", provide);
}

bool AdminServer::Impl::stream_queue(httplib::DataSink& sink) {
  const auto now = queue::wall_clock_ms();
  std::string chunk;
  bool open = true;
  admin.for_each_envelope([&](const queue::Envelope& envelope) {
    chunk += dump(queue_line(envelope, now));
    chunk += '\n';
    if (chunk.size() >= kStreamChunk) {
      open = sink.write(chunk.data(), chunk.size());
      chunk.clear();
    }
    return open && !stopping;
  });
  if (!open || stopping) return false;
  if (!chunk.empty() && !sink.write(chunk.data(), chunk.size())) return false;
  sink.done();
  return true;
}

void AdminServer::Impl::show(const Request& req, Response& res) {
  const auto id = message_id(req, res);
  if (!id) return;
  const auto envelope = admin.envelope(*id);
  if (!envelope) return reply_error(res, 404, "no such message: " + queue::format_id(*id));
  reply(res, 200, message_json(*envelope, queue::wall_clock_ms()));
}

void AdminServer::Impl::stats(Response& res) {
  QueueStats stats(queue::wall_clock_ms());
  admin.for_each_envelope([&](const queue::Envelope& envelope) {
    stats.add(envelope);
    return !stopping;
  });
  if (stopping) return reply_error(res, 503, "the relay is shutting down");
  Json out = stats.to_json();
  out["shaping"] = shaping_json(admin.shaping());
  reply(res, 200, out);
}

template <typename T, typename Start>
std::optional<T> AdminServer::Impl::await(Start&& start, Response& res) {
  // Shared with the completion, which may come after this request gave up waiting.
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  const auto deadline = std::chrono::steady_clock::now() + change_timeout;
  while (future.wait_for(kStopPoll) != std::future_status::ready) {
    if (stopping) {
      reply_error(res, 503, "the relay is shutting down");
      return std::nullopt;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      reply_error(res, 504, "the relay did not complete the change in time");
      return std::nullopt;
    }
  }
  return future.get();
}

void AdminServer::Impl::change(const Request& req, Response& res, const Change& change) {
  const auto id = message_id(req, res);
  if (!id) return;
  const auto result = await<AdminResult>(
      [&](QueueAdmin::Done done) { (admin.*change.start)(*id, std::move(done)); }, res);
  if (!result) return;
  const auto id_text = queue::format_id(*id);
  switch (result->outcome) {
    case AdminOutcome::done:
      return reply(res, 200, Json{{"id", id_text}, {"result", change.result}});
    case AdminOutcome::not_found:
      return reply_error(res, 404, "no such message: " + id_text);
    case AdminOutcome::no_change:
      return reply_error(
          res, 409,
          result->detail.empty() ? "message " + id_text + " " + change.unchanged : result->detail);
    case AdminOutcome::failed:
      return reply_error(res, 500, result->detail.empty() ? "the change failed" : result->detail);
  }
}

void AdminServer::Impl::retry_all(Response& res) {
  const auto count = await<std::size_t>(
      [&](std::function<void(std::size_t)> done) { admin.retry_all(std::move(done)); }, res);
  if (count) reply(res, 200, Json{{"retried", *count}});
}

void AdminServer::Impl::add_routes() {
  server.set_pre_routing_handler([this](const Request& req, Response& res) {
    // Health probes carry no secrets and must work without one.
    if (token.empty() || req.path == "/healthz" || authorized(req)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer realm=\"relayq\"");
    reply_error(res, 401, "missing or wrong bearer token");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/healthz",
             [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  server.Get("/v1/queue", [this](const Request&, Response& res) { list(res); });
  server.Get("/v1/stats", [this](const Request&, Response& res) { stats(res); });
  server.Get(R"(/v1/queue/([^/]+))", [this](const Request& req, Response& res) { show(req, res); });
  server.Post("/v1/queue/retry", [this](const Request&, Response& res) { retry_all(res); });
  server.Post(R"(/v1/queue/([^/]+)/hold)",
              [this](const Request& req, Response& res) { change(req, res, kHold); });
  server.Post(R"(/v1/queue/([^/]+)/release)",
              [this](const Request& req, Response& res) { change(req, res, kRelease); });
  server.Post(R"(/v1/queue/([^/]+)/retry)",
              [this](const Request& req, Response& res) { change(req, res, kRetry); });
  server.Delete(R"(/v1/queue/([^/]+))",
                [this](const Request& req, Response& res) { change(req, res, kRemove); });
  // Also runs for the errors the handlers answered themselves: only fill what has no body.
  server.set_error_handler([](const Request&, Response& res) {
    if (res.body.empty()) {
      reply_error(res, res.status, res.status == 404 ? "no such endpoint" : "bad request");
    }
  });
  server.set_exception_handler([](const Request&, Response& res, std::exception_ptr error) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, 500, what);
  });
}

AdminServer::AdminServer(const std::string& listen, std::string token, QueueAdmin& admin,
                         std::chrono::milliseconds change_timeout)
    : impl_(std::make_unique<Impl>(admin, std::move(token), change_timeout)) {
  auto& server = impl_->server;
  // Requests carry no bodies; a slow reader of a long listing gets a minute per write.
  server.set_payload_max_length(64 * 1024);
  server.set_read_timeout(std::chrono::seconds(10));
  server.set_write_timeout(std::chrono::seconds(60));
  impl_->add_routes();
  impl_->http.start(listen);
}

AdminServer::~AdminServer() {
  impl_->stopping = true;  // waiting changes are answered 503 while httplib stops
}

std::uint16_t AdminServer::port() const {
  return impl_->http.port();
}

}  // namespace relayq::mta
