// The metrics exposition: every contract metric at zero from the start, updates and scrape-time
// sources as they appear in the text format, process metrics, promtool's lint, and a real
// scrape over HTTP.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/text_serializer.h>

#include "metrics/metrics.hpp"

namespace relayq::metrics {
namespace {

constexpr const char* kListener = "127.0.0.1:2525";

std::string exposition(const Metrics& metrics) {
  return prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
}

// The text format read back: each sample by its name and labels as printed, and each family's
// TYPE.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  explicit Scrape(const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("# TYPE ", 0) == 0) {
        std::istringstream words(line.substr(7));
        std::string name, type;
        words >> name >> type;
        types[name] = type;
      } else if (!line.empty() && line[0] != '#') {
        const auto space = line.rfind(' ');
        samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
      }
    }
  }

  bool has(const std::string& series) const { return samples.count(series) == 1; }
  double at(const std::string& series) const {
    INFO(series);
    REQUIRE(has(series));
    return samples.at(series);
  }
};

// A Metrics with one listener registered, as the daemon does at start.
struct Fixture {
  Metrics metrics;
  Fixture() {
    metrics.messages_received(kListener);
    metrics.messages_rejected(kListener, RejectReason::relay_denied);
  }
};

TEST_CASE("metrics every contract metric is present at zero with its type and labels",
          "[metrics]") {
  Fixture fixture;
  const Scrape scrape(exposition(fixture.metrics));

  const std::map<std::string, std::string> types = {
      {"relayq_messages_received_total", "counter"},
      {"relayq_messages_rejected_total", "counter"},
      {"relayq_recipients_delivered_total", "counter"},
      {"relayq_recipients_deferred_total", "counter"},
      {"relayq_recipients_bounced_total", "counter"},
      {"relayq_queue_messages", "gauge"},
      {"relayq_queue_oldest_message_age_seconds", "gauge"},
      {"relayq_accept_duration_seconds", "histogram"},
      {"relayq_delivery_duration_seconds", "histogram"},
      {"relayq_time_in_queue_seconds", "histogram"},
      {"relayq_smtp_connections", "gauge"},
      {"relayq_policy_results_total", "counter"},
      {"relayq_outbound_replies_total", "counter"},
  };
  for (const auto& [name, type] : types) {
    INFO(name);
    REQUIRE(scrape.types.count(name) == 1);
    CHECK(scrape.types.at(name) == type);
  }

  std::vector<std::string> zero = {
      "relayq_messages_received_total{listener=\"127.0.0.1:2525\"}",
      "relayq_messages_rejected_total{listener=\"127.0.0.1:2525\",reason=\"relay_denied\"}",
      "relayq_recipients_delivered_total",
      "relayq_recipients_deferred_total",
      "relayq_recipients_bounced_total",
      "relayq_queue_messages{state=\"ready\"}",
      "relayq_queue_messages{state=\"scheduled\"}",
      "relayq_queue_messages{state=\"held\"}",
      "relayq_queue_oldest_message_age_seconds",
      "relayq_smtp_connections{direction=\"inbound\"}",
      "relayq_smtp_connections{direction=\"outbound\"}",
      "relayq_policy_results_total{check=\"spf\",result=\"pass\"}",
      "relayq_policy_results_total{check=\"spf\",result=\"softfail\"}",
      "relayq_policy_results_total{check=\"dkim\",result=\"fail\"}",
      "relayq_policy_results_total{check=\"rdns\",result=\"temperror\"}",
      "relayq_outbound_replies_total{class=\"2xx\"}",
      "relayq_outbound_replies_total{class=\"4xx\"}",
      "relayq_outbound_replies_total{class=\"5xx\"}",
      "relayq_outbound_replies_total{class=\"error\"}",
  };
  for (const char* histogram :
       {"relayq_accept_duration_seconds", "relayq_delivery_duration_seconds",
        "relayq_time_in_queue_seconds"}) {
    zero.push_back(std::string(histogram) + "_count");
    zero.push_back(std::string(histogram) + "_sum");
    zero.push_back(std::string(histogram) + "_bucket{le=\"+Inf\"}");
  }
  for (const auto& series : zero) CHECK(scrape.at(series) == 0);
}

TEST_CASE("metrics histogram buckets are milliseconds for accept and days for time in queue",
          "[metrics]") {
  Metrics metrics;
  const Scrape scrape(exposition(metrics));
  CHECK(scrape.has("relayq_accept_duration_seconds_bucket{le=\"0.0005\"}"));
  CHECK(scrape.has("relayq_accept_duration_seconds_bucket{le=\"0.001\"}"));
  CHECK(scrape.has("relayq_time_in_queue_seconds_bucket{le=\"86400\"}"));
  CHECK(scrape.has("relayq_time_in_queue_seconds_bucket{le=\"432000\"}"));
}

TEST_CASE("metrics updates appear in the exposition", "[metrics]") {
  Fixture fixture;
  Metrics& metrics = fixture.metrics;
  metrics.messages_received(kListener).Increment();
  metrics.messages_rejected(kListener, RejectReason::size).Increment(2);
  metrics.recipients_delivered().Increment();
  metrics.recipients_deferred().Increment(3);
  metrics.inbound_connections().Increment();
  metrics.inbound_connections().Increment();
  metrics.inbound_connections().Decrement();
  metrics.outbound_replies(ReplyClass::transient).Increment();
  metrics.policy_result(PolicyCheck::spf, PolicyResult::pass).Increment();
  metrics.policy_result(PolicyCheck::rdns, PolicyResult::none).Increment();
  metrics.queue_messages(QueueState::held).Set(7);
  metrics.queue_oldest_message_age().Set(12.5);
  metrics.accept_duration().Observe(0.0007);
  metrics.accept_duration().Observe(0.001);  // on a bound: counts in that bucket
  metrics.accept_duration().Observe(60);

  const Scrape scrape(exposition(metrics));
  CHECK(scrape.at("relayq_messages_received_total{listener=\"127.0.0.1:2525\"}") == 1);
  CHECK(scrape.at("relayq_messages_rejected_total{listener=\"127.0.0.1:2525\",reason=\"size\"}") ==
        2);
  CHECK(scrape.at("relayq_recipients_delivered_total") == 1);
  CHECK(scrape.at("relayq_recipients_deferred_total") == 3);
  CHECK(scrape.at("relayq_smtp_connections{direction=\"inbound\"}") == 1);
  CHECK(scrape.at("relayq_outbound_replies_total{class=\"4xx\"}") == 1);
  CHECK(scrape.at("relayq_policy_results_total{check=\"spf\",result=\"pass\"}") == 1);
  CHECK(scrape.at("relayq_policy_results_total{check=\"rdns\",result=\"none\"}") == 1);
  CHECK(scrape.at("relayq_queue_messages{state=\"held\"}") == 7);
  CHECK(scrape.at("relayq_queue_oldest_message_age_seconds") == 12.5);
  CHECK(scrape.at("relayq_accept_duration_seconds_bucket{le=\"0.0005\"}") == 0);
  CHECK(scrape.at("relayq_accept_duration_seconds_bucket{le=\"0.001\"}") == 2);
  CHECK(scrape.at("relayq_accept_duration_seconds_bucket{le=\"10\"}") == 2);
  CHECK(scrape.at("relayq_accept_duration_seconds_bucket{le=\"+Inf\"}") == 3);
  CHECK(scrape.at("relayq_accept_duration_seconds_count") == 3);
  CHECK(scrape.at("relayq_accept_duration_seconds_sum") == Approx(60.0017));
}

TEST_CASE("metrics labeled accessors return the same series each time", "[metrics]") {
  Metrics metrics;
  CHECK(&metrics.messages_received("a") == &metrics.messages_received("a"));
  CHECK(&metrics.messages_received("a") != &metrics.messages_received("b"));
  CHECK(&metrics.messages_rejected("a", RejectReason::size) ==
        &metrics.messages_rejected("a", RejectReason::size));
  CHECK(&metrics.policy_result(PolicyCheck::dkim, PolicyResult::pass) ==
        &metrics.policy_result(PolicyCheck::dkim, PolicyResult::pass));
  CHECK(&metrics.policy_result(PolicyCheck::rdns, PolicyResult::none) ==
        &metrics.policy_result(PolicyCheck::rdns, PolicyResult::none));
  CHECK(&metrics.outbound_replies(ReplyClass::permanent) ==
        &metrics.outbound_replies(ReplyClass::permanent));
  CHECK(&metrics.queue_messages(QueueState::ready) == &metrics.queue_messages(QueueState::ready));
}

TEST_CASE("metrics delivery failures count by category and result", "[metrics]") {
  Metrics metrics;
  Counter& bounced = metrics.delivery_failures("bad_mailbox", FailureResult::bounced);
  CHECK(&bounced == &metrics.delivery_failures("bad_mailbox", FailureResult::bounced));
  CHECK(&bounced != &metrics.delivery_failures("bad_mailbox", FailureResult::deferred));
  metrics.delivery_failures("rate_limit", FailureResult::deferred);
  bounced.Increment();
  const Scrape scrape(exposition(metrics));
  CHECK(scrape.types.at("relayq_delivery_failures_total") == "counter");
  CHECK(scrape.at(R"(relayq_delivery_failures_total{category="bad_mailbox",result="bounced"})") ==
        1);
  CHECK(scrape.at(R"(relayq_delivery_failures_total{category="rate_limit",result="deferred"})") ==
        0);
}

TEST_CASE("metrics reply classes follow the reply code; no reply at all is an error", "[metrics]") {
  CHECK(reply_class_of(0) == ReplyClass::error);
  CHECK(reply_class_of(250) == ReplyClass::success);
  CHECK(reply_class_of(354) == ReplyClass::success);
  CHECK(reply_class_of(421) == ReplyClass::transient);
  CHECK(reply_class_of(550) == ReplyClass::permanent);
  CHECK(label(reply_class_of(451)) == "4xx");
}

TEST_CASE("metrics histogram bounds are checked", "[metrics]") {
  CHECK_THROWS_AS(Histogram({1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(Histogram({2, 1}), std::invalid_argument);
  CHECK_THROWS_AS(Histogram(Histogram::BucketBoundaries(Histogram::kMaxBounds + 1, 0)),
                  std::invalid_argument);
  Histogram no_bounds({});
  no_bounds.Observe(3);
  CHECK(no_bounds.snapshot().cumulative == std::vector<std::uint64_t>{1});
}

TEST_CASE("metrics queue gauges come from the source at each scrape", "[metrics]") {
  Metrics metrics;
  metrics.queue_messages(QueueState::ready).Set(99);
  QueueGauges current{.ready = 3, .scheduled = 5, .held = 1, .oldest_message_age_seconds = 42.5};
  metrics.set_queue_gauges_source([&current] { return current; });

  Scrape scrape(exposition(metrics));
  CHECK(scrape.at("relayq_queue_messages{state=\"ready\"}") == 3);
  CHECK(scrape.at("relayq_queue_messages{state=\"scheduled\"}") == 5);
  CHECK(scrape.at("relayq_queue_messages{state=\"held\"}") == 1);
  CHECK(scrape.at("relayq_queue_oldest_message_age_seconds") == 42.5);

  current.ready = 0;
  current.oldest_message_age_seconds = 0;
  scrape = Scrape(exposition(metrics));
  CHECK(scrape.at("relayq_queue_messages{state=\"ready\"}") == 0);
  CHECK(scrape.at("relayq_queue_oldest_message_age_seconds") == 0);

  // A source that throws hides nothing that must always be there: the last values stay.
  metrics.set_queue_gauges_source([]() -> QueueGauges { throw std::runtime_error("down"); });
  scrape = Scrape(exposition(metrics));
  CHECK(scrape.at("relayq_queue_messages{state=\"scheduled\"}") == 5);
}

TEST_CASE("metrics store gauges appear only while a source is set", "[metrics]") {
  Metrics metrics;
  CHECK_FALSE(Scrape(exposition(metrics)).has("relayq_queue_store_size_bytes"));

  metrics.set_store_gauges_source([] {
    return StoreGauges{.size_bytes = 123456,
                       .pending_compaction_bytes = 789,
                       .write_stall = true,
                       .stall_micros_total = 2'500'000};
  });
  const std::string text = exposition(metrics);
  const Scrape scrape(text);
  CHECK(scrape.at("relayq_queue_store_size_bytes") == 123456);
  CHECK(scrape.at("relayq_queue_store_pending_compaction_bytes") == 789);
  CHECK(scrape.at("relayq_queue_store_write_stalled") == 1);
  CHECK(scrape.at("relayq_queue_store_write_stall_seconds_total") == 2.5);
  CHECK(scrape.types.at("relayq_queue_store_size_bytes") == "gauge");
  CHECK(scrape.types.at("relayq_queue_store_write_stalled") == "gauge");
  CHECK(scrape.types.at("relayq_queue_store_write_stall_seconds_total") == "counter");
  CHECK(text.find("# HELP relayq_queue_store_size_bytes ") != std::string::npos);

  metrics.set_store_gauges_source({});
  CHECK_FALSE(Scrape(exposition(metrics)).has("relayq_queue_store_size_bytes"));
}

TEST_CASE("metrics process metrics are present and plausible", "[metrics]") {
  Metrics metrics;
  const Scrape scrape(exposition(metrics));
  CHECK(scrape.types.at("process_cpu_seconds_total") == "counter");
  CHECK(scrape.types.at("process_resident_memory_bytes") == "gauge");
  CHECK(scrape.at("process_resident_memory_bytes") > 1 << 20);
  CHECK(scrape.at("process_resident_memory_bytes") < 64.0 * (1ull << 30));
  CHECK(scrape.at("process_virtual_memory_bytes") >= scrape.at("process_resident_memory_bytes"));
  CHECK(scrape.at("process_cpu_seconds_total") >= 0);
  CHECK(scrape.at("process_open_fds") >= 3);
  CHECK(scrape.at("process_max_fds") >= scrape.at("process_open_fds"));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double started = scrape.at("process_start_time_seconds");
  CHECK(started <= now + 1);
  CHECK(started > now - 86400);
}

bool promtool_installed() {
  return std::filesystem::exists("/usr/bin/promtool");
}

// What `promtool check metrics` says about an exposition; empty when it has no complaint.
std::string promtool_findings(const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("relayq-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << text;
  FILE* pipe =
      ::popen(("/usr/bin/promtool check metrics < " + path.string() + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  if (status != 0 && output.empty()) output = "promtool exited with " + std::to_string(status);
  return output;
}

TEST_CASE("metrics exposition passes promtool check metrics without warnings", "[metrics]") {
  if (!promtool_installed()) {
    WARN("promtool not installed (Debian package prometheus): lint skipped");
    return;
  }
  Fixture fixture;
  Metrics& metrics = fixture.metrics;
  metrics.set_queue_gauges_source([] { return QueueGauges{.ready = 1}; });
  metrics.set_store_gauges_source([] { return StoreGauges{.size_bytes = 1}; });
  metrics.accept_duration().Observe(0.002);
  metrics.policy_result(PolicyCheck::rdns, PolicyResult::pass).Increment();
  CHECK(promtool_findings(exposition(metrics)).empty());
  CHECK(promtool_findings(exposition(Metrics())).empty());
}

// GET /metrics over a plain socket; the whole response, headers included.
std::string http_get_metrics(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, n);
  ::close(fd);
  return response;
}

TEST_CASE("metrics server serves the registry over HTTP", "[metrics]") {
  Fixture fixture;
  fixture.metrics.recipients_delivered().Increment(5);
  MetricsServer server("127.0.0.1:0", fixture.metrics.registry());
  REQUIRE(server.port() != 0);

  const std::string response = http_get_metrics(server.port());
  REQUIRE(response.rfind("HTTP/1.1 200", 0) == 0);
  const auto body = response.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  const std::string text = response.substr(body + 4);
  const Scrape scrape(text);
  CHECK(scrape.at("relayq_recipients_delivered_total") == 5);
  CHECK(scrape.at("relayq_messages_received_total{listener=\"127.0.0.1:2525\"}") == 0);
  CHECK(scrape.has("process_open_fds"));
  // What Prometheus really gets, the exposer's own metrics included, passes the lint too.
  if (promtool_installed()) CHECK(promtool_findings(text).empty());
}

TEST_CASE("Policy result words map to their label, anything else to permerror", "[metrics]") {
  for (const PolicyResult result : kPolicyResults)
    CHECK(policy_result_named(label(result)) == result);
  CHECK(policy_result_named("softfail") == PolicyResult::softfail);
  CHECK(policy_result_named("bogus") == PolicyResult::permerror);
  CHECK(policy_result_named("") == PolicyResult::permerror);
}

}  // namespace
}  // namespace relayq::metrics
