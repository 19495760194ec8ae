// The admin HTTP API end to end: a real AdminServer over a real store, driven with
// httplib::Client: every endpoint, a streamed listing of 10,000 messages, the bearer token,
// and the mapping of outcomes, bad ids, slow and failed changes to HTTP statuses.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mta/admin/server.hpp"
#include "queue/message.hpp"
#include "queue/store.hpp"
#include "support/store_queue_admin.hpp"
#include "support/temp_dir.hpp"

namespace relayq::mta {
namespace {

using nlohmann::json;
using queue::Envelope;
using queue::RecipientState;
using test::StoreQueueAdmin;
using test::TempDir;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

queue::Recipient recipient(std::string address) {
  queue::Recipient recipient;
  recipient.address = std::move(address);
  return recipient;
}

// A store in a temp dir, the QueueAdmin over it, and the server on a free loopback port.
struct Api {
  explicit Api(std::string token = "",
               std::chrono::milliseconds change_timeout = std::chrono::seconds(30))
      : store(queue::Store::open({.path = dir.store()})),
        admin(*store),
        server(
            std::make_unique<AdminServer>("127.0.0.1:0", std::move(token), admin, change_timeout)),
        client("127.0.0.1", server->port()) {}

  // Stores a message received `age_ms` ago, then commits `change` to it (attempts, holds).
  Envelope add(std::vector<std::string> addresses,
               const std::function<void(Envelope&)>& change = {}, std::int64_t age_ms = 60'000,
               std::string sender = "sender@example.test") {
    queue::Message message;
    message.envelope.id = store->next_id();
    message.envelope.sender = std::move(sender);
    for (auto& address : addresses) message.envelope.recipients.push_back(recipient(address));
    message.envelope.received_ms = now_ms() - age_ms;
    message.envelope.listener = "127.0.0.1:2525";
    message.envelope.client_address = "192.0.2.7";
    message.envelope.helo = "client.test";
    message.body = "Subject: admin test\r\n\r\nHello.\r\n";
    message.envelope.size = message.body.size();
    std::promise<queue::StoreResult> stored;
    store->submit(message, [&](const queue::StoreResult& result) { stored.set_value(result); });
    REQUIRE(stored.get_future().get().ok());
    if (!change) return message.envelope;
    Envelope after = message.envelope;
    change(after);
    std::promise<queue::StoreResult> committed;
    store->commit(message.envelope, after, std::nullopt,
                  [&](const queue::StoreResult& result) { committed.set_value(result); });
    REQUIRE(committed.get_future().get().ok());
    return after;
  }

  TempDir dir;
  std::unique_ptr<queue::Store> store;
  StoreQueueAdmin admin;
  std::unique_ptr<AdminServer> server;
  httplib::Client client;
};

// One failed attempt, as delivery records it.
void defer(queue::Recipient& recipient, std::int64_t at_ms, std::int64_t next_ms,
           std::string reply = "451 4.3.0 try later", std::string category = "network") {
  ++recipient.attempts;
  recipient.last_reply = reply;
  recipient.history.push_back(
      {at_ms, "mx1.example.org[192.0.2.1]:25", std::move(reply), "", std::move(category)});
  recipient.next_attempt_ms = next_ms;
}

void finish(queue::Recipient& recipient, RecipientState state, std::int64_t at_ms,
            std::string reply) {
  ++recipient.attempts;
  recipient.state = state;
  recipient.last_reply = reply;
  const std::string category = state == RecipientState::delivered ? "" : "bad_mailbox";
  recipient.history.push_back(
      {at_ms, "mx1.example.org[192.0.2.1]:25", std::move(reply), "", category});
}

json body_of(const httplib::Result& result) {
  REQUIRE(result);
  REQUIRE(result->get_header_value("Content-Type") == "application/json");
  return json::parse(result->body);
}

std::string error_of(const httplib::Result& result) {
  return body_of(result).at("error").get<std::string>();
}

std::vector<json> ndjson(const std::string& text) {
  std::vector<json> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(json::parse(line));
  return lines;
}

}  // namespace

TEST_CASE("Admin API healthz answers ok", "[admin]") {
  Api api;
  const auto result = api.client.Get("/healthz");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(result->body == "ok\n");
}

TEST_CASE(
    "Admin API lists the queue as NDJSON with pending recipients, next attempt and last error",
    "[admin]") {
  Api api;
  const auto now = now_ms();
  const auto deferred = api.add({"b@one.test", "c@two.test", "d@two.test"}, [&](Envelope& e) {
    defer(e.recipients[0], now - 30'000, now + 300'000);
    finish(e.recipients[1], RecipientState::delivered, now - 30'000, "250 2.0.0 ok");
    defer(e.recipients[2], now - 20'000, now + 120'000, "421 4.3.2 busy", "rate_limit");
  });
  const auto held = api.add(
      {"e@one.test"}, [](Envelope& e) { e.held = true; }, 5'000);
  const auto bounce = api.add({"f@three.test"}, {}, 1'000, "");

  const auto result = api.client.Get("/v1/queue");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(result->get_header_value("Content-Type") == "application/x-ndjson");
  CHECK(result->get_header_value("Transfer-Encoding") == "chunked");
  const auto lines = ndjson(result->body);
  REQUIRE(lines.size() == 3);

  CHECK(lines[0]["id"] == queue::format_id(deferred.id));
  CHECK(lines[0]["sender"] == "sender@example.test");
  CHECK(lines[0]["age_s"].get<double>() >= 60.0);
  CHECK(lines[0]["age_s"].get<double>() < 70.0);
  CHECK(lines[0]["recipients_pending"] == json::array({"b@one.test", "d@two.test"}));
  CHECK(lines[0]["next_attempt_ms"] == now + 120'000);  // the earliest pending
  CHECK(lines[0]["last_error"] == "421 4.3.2 busy");    // the newest attempt's reply
  CHECK(lines[0]["last_category"] == "rate_limit");     // and its category
  CHECK(lines[0]["held"] == false);

  CHECK(lines[1]["id"] == queue::format_id(held.id));
  CHECK(lines[1]["held"] == true);
  CHECK(lines[1]["last_error"].is_null());  // never tried
  CHECK(lines[1]["last_category"].is_null());
  CHECK(lines[1]["next_attempt_ms"] == held.received_ms);  // a first attempt is due on arrival

  CHECK(lines[2]["id"] == queue::format_id(bounce.id));
  CHECK(lines[2]["sender"] == "");
  CHECK(lines[2]["recipients_pending"] == json::array({"f@three.test"}));
}

TEST_CASE("Admin API streams a listing of 10000 messages in pieces", "[admin]") {
  Api api;
  constexpr std::size_t kMessages = 10'000;
  // Completions run on the store's writer thread, where Catch assertions must not.
  std::atomic<std::size_t> stored{0};
  std::atomic<std::size_t> failed{0};
  std::promise<void> all_stored;
  for (std::size_t i = 0; i < kMessages; ++i) {
    queue::Message message;
    message.envelope.id = api.store->next_id();
    message.envelope.sender = "bulk@example.test";
    message.envelope.recipients.push_back(recipient("r" + std::to_string(i) + "@example.org"));
    message.envelope.received_ms = now_ms();
    message.body = "Subject: bulk\r\n\r\nx\r\n";
    api.store->submit(std::move(message), [&](const queue::StoreResult& result) {
      failed += !result.ok();
      if (++stored == kMessages) all_stored.set_value();
    });
  }
  all_stored.get_future().get();
  REQUIRE(failed == 0);

  std::string transfer_encoding;
  std::size_t pieces = 0;
  std::string text;
  const auto result = api.client.Get(
      "/v1/queue",
      [&](const httplib::Response& response) {
        transfer_encoding = response.get_header_value("Transfer-Encoding");
        return response.status == 200;
      },
      [&](const char* data, std::size_t size) {
        ++pieces;
        text.append(data, size);
        return true;
      });
  REQUIRE(result);
  CHECK(transfer_encoding == "chunked");
  CHECK(pieces > 10);  // written as it was read, not as one body
  const auto lines = ndjson(text);
  REQUIRE(lines.size() == kMessages);
  std::set<std::string> ids;
  for (const auto& line : lines) ids.insert(line["id"].get<std::string>());
  CHECK(ids.size() == kMessages);
  CHECK(lines.back()["recipients_pending"][0] == "r9999@example.org");
}

TEST_CASE("Admin API shows one message with every recipient and its attempt history", "[admin]") {
  Api api;
  const auto now = now_ms();
  const auto message = api.add({"b@one.test", "c@two.test"}, [&](Envelope& e) {
    defer(e.recipients[0], now - 400'000, now - 100'000);
    defer(e.recipients[0], now - 100'000, now + 240'000, "452 4.2.2 mailbox full", "mailbox_full");
    finish(e.recipients[1], RecipientState::bounced, now - 400'000, "550 5.1.1 no such user");
  });
  const auto id = queue::format_id(message.id);

  const auto result = api.client.Get("/v1/queue/" + id);
  REQUIRE(result);
  CHECK(result->status == 200);
  const auto shown = body_of(result);
  CHECK(shown["id"] == id);
  CHECK(shown["sender"] == "sender@example.test");
  CHECK(shown["received_ms"] == message.received_ms);
  CHECK(shown["size"] == message.size);
  CHECK(shown["listener"] == "127.0.0.1:2525");
  CHECK(shown["client_address"] == "192.0.2.7");
  CHECK(shown["helo"] == "client.test");
  CHECK(shown["held"] == false);
  REQUIRE(shown["recipients"].size() == 2);
  const auto& pending = shown["recipients"][0];
  CHECK(pending["address"] == "b@one.test");
  CHECK(pending["state"] == "pending");
  CHECK(pending["attempts"] == 2);
  CHECK(pending["last_reply"] == "452 4.2.2 mailbox full");
  CHECK(pending["next_attempt_ms"] == now + 240'000);
  CHECK(pending["retry_rule"] == "default");
  REQUIRE(pending["history"].size() == 2);
  CHECK(pending["history"][1] == json{{"time_ms", now - 100'000},
                                      {"nexthop", "mx1.example.org[192.0.2.1]:25"},
                                      {"reply", "452 4.2.2 mailbox full"},
                                      {"tls", ""},
                                      {"category", "mailbox_full"}});
  const auto& bounced = shown["recipients"][1];
  CHECK(bounced["state"] == "bounced");
  CHECK(bounced["next_attempt_ms"].is_null());
  CHECK(bounced["retry_rule"].is_null());
  CHECK(bounced["history"][0]["reply"] == "550 5.1.1 no such user");
  CHECK(bounced["history"][0]["category"] == "bad_mailbox");
}

TEST_CASE("Admin API names the retry rule that set each next attempt", "[admin]") {
  Api api;
  const auto now = now_ms();
  const auto message = api.add({"a@slow.example", "b@other.test"}, [&](Envelope& e) {
    defer(e.recipients[0], now - 100'000, now + 3'600'000);
    e.recipients[0].retry_rule = "slow.example";
  });
  const auto result = api.client.Get("/v1/queue/" + queue::format_id(message.id));
  REQUIRE(result);
  const auto shown = body_of(result);
  CHECK(shown["recipients"][0]["retry_rule"] == "slow.example");
  // Not tried yet: no rule set its time.
  CHECK(shown["recipients"][1]["retry_rule"].is_null());
}

TEST_CASE("Admin API answers 404 for a missing message and 400 for a bad id", "[admin]") {
  Api api;
  const auto missing = api.client.Get("/v1/queue/00000000000000AB");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(error_of(missing) == "no such message: 00000000000000AB");

  for (const std::string bad : {"xyz", "123", "00000000000000ZZ", "00000000000000AB0"}) {
    INFO(bad);
    const auto shown = api.client.Get("/v1/queue/" + bad);
    REQUIRE(shown);
    CHECK(shown->status == 400);
    CHECK(error_of(shown).find("not a message id") != std::string::npos);
    const auto held = api.client.Post("/v1/queue/" + bad + "/hold");
    REQUIRE(held);
    CHECK(held->status == 400);
    const auto deleted = api.client.Delete("/v1/queue/" + bad);
    REQUIRE(deleted);
    CHECK(deleted->status == 400);
  }

  const auto unknown = api.client.Get("/v1/nothing");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(error_of(unknown) == "no such endpoint");
}

TEST_CASE("Admin API stats count messages by state, recipients and domains", "[admin]") {
  Api api;
  const auto now = now_ms();
  api.add({"a@one.test", "b@one.test", "c@two.test"}, {}, 3'600'000);  // ready: first attempt
  api.add({"d@one.test", "e@three.test"}, [&](Envelope& e) {           // scheduled
    defer(e.recipients[0], now - 1'000, now + 300'000);
    finish(e.recipients[1], RecipientState::delivered, now - 1'000, "250 ok");
  });
  api.add({"f@Two.Test"}, [](Envelope& e) { e.held = true; });  // held, domain lower-cased

  const auto result = api.client.Get("/v1/stats");
  REQUIRE(result);
  CHECK(result->status == 200);
  const auto stats = body_of(result);
  CHECK(stats["messages"] == 3);
  CHECK(stats["by_state"] == json{{"ready", 1}, {"scheduled", 1}, {"held", 1}});
  CHECK(stats["recipients"] == json{{"pending", 5}, {"delivered", 1}, {"bounced", 0}});
  CHECK(stats["by_domain"]["one.test"] == json{{"messages", 2}, {"recipients", 3}});
  CHECK(stats["by_domain"]["two.test"] == json{{"messages", 2}, {"recipients", 2}});
  CHECK_FALSE(stats["by_domain"].contains("three.test"));  // delivered: nothing pending there
  CHECK(stats["oldest_age_s"].get<double>() >= 3600.0);
  CHECK(stats["oldest_age_s"].get<double>() < 3700.0);
}

TEST_CASE("Admin API stats name the top 50 domains and sum the rest as other", "[admin]") {
  Api api;
  std::vector<std::string> addresses;
  for (int domain = 0; domain < 60; ++domain) {
    // Domain dN gets 100 - N recipients, so the order is known.
    for (int i = 0; i < 100 - domain; ++i) {
      addresses.push_back("u" + std::to_string(i) + "@d" + std::to_string(domain) + ".test");
    }
  }
  api.add(addresses);
  api.add({"x@d59.test"});

  const auto stats = body_of(api.client.Get("/v1/stats"));
  const auto& by_domain = stats["by_domain"];
  REQUIRE(by_domain.size() == 51);
  CHECK(by_domain["d0.test"] == json{{"messages", 1}, {"recipients", 100}});
  CHECK(by_domain["d49.test"] == json{{"messages", 1}, {"recipients", 51}});
  CHECK_FALSE(by_domain.contains("d50.test"));
  // d50..d59: 50 + 49 + ... + 41 recipients, plus the second message's one.
  CHECK(by_domain["other"] == json{{"messages", 11}, {"recipients", 456}});
  // Largest first, as the server ordered them.
  const auto text = api.client.Get("/v1/stats")->body;
  CHECK(text.find("\"d0.test\"") < text.find("\"d1.test\""));
}

TEST_CASE("Admin API hold, release, retry and delete change the stored message", "[admin]") {
  Api api;
  const auto now = now_ms();
  const auto message = api.add(
      {"b@one.test"}, [&](Envelope& e) { defer(e.recipients[0], now - 1'000, now + 3'600'000); });
  const auto id = queue::format_id(message.id);
  const auto path = "/v1/queue/" + id;

  auto result = api.client.Post(path + "/hold");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(body_of(result) == json{{"id", id}, {"result", "held"}});
  CHECK(api.store->load_envelope(message.id)->held);

  result = api.client.Post(path + "/hold");
  REQUIRE(result);
  CHECK(result->status == 409);
  CHECK(error_of(result) == "message " + id + " is already held");

  result = api.client.Post(path + "/release");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(body_of(result)["result"] == "released");
  CHECK_FALSE(api.store->load_envelope(message.id)->held);

  result = api.client.Post(path + "/release");
  REQUIRE(result);
  CHECK(result->status == 409);
  CHECK(error_of(result) == "message " + id + " is not held");

  result = api.client.Post(path + "/retry");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(body_of(result)["result"] == "retried");
  CHECK(api.store->load_envelope(message.id)->recipients[0].next_attempt_ms <= now_ms());

  result = api.client.Delete(path);
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(body_of(result)["result"] == "deleted");
  CHECK_FALSE(api.store->load_envelope(message.id));

  for (const auto& [method, suffix] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/hold"}, {"POST", "/release"}, {"POST", "/retry"}, {"DELETE", ""}}) {
    INFO(method << suffix);
    result = method == "POST" ? api.client.Post(path + suffix) : api.client.Delete(path);
    REQUIRE(result);
    CHECK(result->status == 404);
    CHECK(error_of(result) == "no such message: " + id);
  }
}

TEST_CASE("Admin API retry of all messages skips held ones and says how many", "[admin]") {
  Api api;
  const auto now = now_ms();
  const auto later = [&](Envelope& e) { defer(e.recipients[0], now - 1'000, now + 3'600'000); };
  const auto first = api.add({"a@one.test"}, later);
  const auto second = api.add({"b@one.test"}, later);
  const auto held = api.add({"c@one.test"}, [&](Envelope& e) {
    later(e);
    e.held = true;
  });

  const auto result = api.client.Post("/v1/queue/retry");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(body_of(result) == json{{"retried", 2}});
  CHECK(api.store->load_envelope(first.id)->recipients[0].next_attempt_ms <= now_ms());
  CHECK(api.store->load_envelope(second.id)->recipients[0].next_attempt_ms <= now_ms());
  CHECK(api.store->load_envelope(held.id)->recipients[0].next_attempt_ms == now + 3'600'000);
}

TEST_CASE("Admin API requires the bearer token on everything but healthz", "[admin]") {
  Api api("s3cret-token");
  const auto message = api.add({"b@one.test"});
  const auto path = "/v1/queue/" + queue::format_id(message.id);

  for (const auto& headers :
       {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer wrong"}},
        httplib::Headers{{"Authorization", "Bearer s3cret-token2"}},
        httplib::Headers{{"Authorization", "Basic s3cret-token"}}}) {
    for (const auto& result :
         {api.client.Get("/v1/queue", headers), api.client.Get(path, headers),
          api.client.Get("/v1/stats", headers), api.client.Post(path + "/hold", headers),
          api.client.Delete(path, headers)}) {
      REQUIRE(result);
      CHECK(result->status == 401);
      CHECK(result->get_header_value("WWW-Authenticate") == "Bearer realm=\"relayq\"");
      CHECK(error_of(result) == "missing or wrong bearer token");
    }
  }
  CHECK_FALSE(api.store->load_envelope(message.id)->held);  // nothing changed on the way

  const auto health = api.client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);

  api.client.set_bearer_token_auth("s3cret-token");
  const auto listed = api.client.Get("/v1/queue");
  REQUIRE(listed);
  CHECK(listed->status == 200);
  CHECK(ndjson(listed->body).size() == 1);
  const auto held = api.client.Post(path + "/hold");
  REQUIRE(held);
  CHECK(held->status == 200);
}

TEST_CASE("Admin API answers 500 with the reason when the store refuses a change", "[admin]") {
  Api api;
  const auto message = api.add({"b@one.test"});
  api.store->close();  // reads still work, commits fail with shutting_down
  const auto result = api.client.Post("/v1/queue/" + queue::format_id(message.id) + "/hold");
  REQUIRE(result);
  CHECK(result->status == 500);
  CHECK_FALSE(error_of(result).empty());
}

namespace {

// Starts changes and never completes them by itself, like a daemon whose loop is stuck.
class StuckQueueAdmin : public StoreQueueAdmin {
 public:
  using StoreQueueAdmin::StoreQueueAdmin;
  void hold(queue::MessageId, Done done) override {
    waiting = std::move(done);
    started.set_value();
  }
  Done waiting;
  std::promise<void> started;
};

}  // namespace

TEST_CASE("Admin API answers 504 when a change does not complete in time", "[admin]") {
  TempDir dir;
  auto store = queue::Store::open({.path = dir.store()});
  StuckQueueAdmin admin(*store);
  {
    AdminServer server("127.0.0.1:0", "", admin, std::chrono::milliseconds(200));
    httplib::Client client("127.0.0.1", server.port());
    const auto started = std::chrono::steady_clock::now();
    const auto result = client.Post("/v1/queue/00000000000000AB/hold");
    REQUIRE(result);
    CHECK(result->status == 504);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  }
  // The completion may still come, after the request and even the server are gone.
  admin.waiting(AdminResult{});
}

TEST_CASE("Admin API answers 503 to a waiting change when the server stops", "[admin]") {
  TempDir dir;
  auto store = queue::Store::open({.path = dir.store()});
  StuckQueueAdmin admin(*store);
  auto server = std::make_unique<AdminServer>("127.0.0.1:0", "", admin);
  httplib::Client client("127.0.0.1", server->port());
  auto reply = std::async(std::launch::async, [&] {
    const auto result = client.Post("/v1/queue/00000000000000AB/hold");
    return result ? result->status : -1;
  });
  admin.started.get_future().get();
  const auto stopping = std::chrono::steady_clock::now();
  server.reset();  // long before the 30 s change timeout
  CHECK(std::chrono::steady_clock::now() - stopping < std::chrono::seconds(5));
  CHECK(reply.get() == 503);
}

TEST_CASE("Admin API refuses to start on an address already taken, naming it", "[admin]") {
  TempDir dir;
  auto store = queue::Store::open({.path = dir.store()});
  StoreQueueAdmin admin(*store);
  AdminServer first("127.0.0.1:0", "", admin);
  const auto address = "127.0.0.1:" + std::to_string(first.port());
  try {
    AdminServer second(address, "", admin);
    FAIL("a second server listened on " << address);
  } catch (const std::runtime_error& error) {
    CHECK(std::string(error.what()).find(address) != std::string::npos);
  }
  CHECK_THROWS_WITH(AdminServer("not an address", "", admin),
                    Catch::Contains("cannot listen on not an address"));
}

}  // namespace relayq::mta
