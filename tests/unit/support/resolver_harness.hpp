// A libuv loop with a dns::Resolver on it, and a way to wait for one answer: tests of the
// resolver and of next-hop selection run each lookup to completion through it.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "dns/resolver.hpp"
#include "support/dns_test_server.hpp"

namespace relayq::test {

// Short timeouts keep failure tests quick; loopback answers take microseconds anyway.
inline dns::ResolverOptions test_resolver_options(const std::string& server) {
  dns::ResolverOptions options;
  options.servers = {server};
  options.timeout = std::chrono::milliseconds(300);
  options.tries = 2;
  return options;
}

// Owns the loop; a base so that it outlives the resolver, whose handles close on it.
class TestLoop {
 public:
  TestLoop() { uv_loop_init(&loop_); }
  ~TestLoop() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  uv_loop_t* loop() { return &loop_; }

  // Runs the loop until the callback handed to `start` delivers an Answer.
  template <class Answer, class Start>
  Answer wait(Start&& start) {
    std::optional<Answer> answer;
    start([&answer](Answer value) { answer = std::move(value); });
    while (!answer && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    if (!answer) throw std::runtime_error("the loop ran dry without an answer");
    return std::move(*answer);
  }

  // After shutdown, every handle must close: uv_loop_close then succeeds.
  bool closes_cleanly() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    return uv_loop_alive(&loop_) == 0;
  }

 private:
  uv_loop_t loop_;
};

class ResolverHarness : public TestLoop {
 public:
  explicit ResolverHarness(const dns::ResolverOptions& options,
                           std::shared_ptr<dns::Cache> cache = dns::make_cache())
      : resolver(loop(), options, std::move(cache)) {}

  dns::MxAnswer mx(const std::string& name) {
    return wait<dns::MxAnswer>([&](auto done) { resolver.mx(name, done); });
  }
  dns::AddressAnswer addresses(const std::string& name) {
    return wait<dns::AddressAnswer>([&](auto done) { resolver.addresses(name, done); });
  }
  dns::TextAnswer txt(const std::string& name) {
    return wait<dns::TextAnswer>([&](auto done) { resolver.txt(name, done); });
  }
  dns::NameAnswer ptr(const std::string& ip) {
    return wait<dns::NameAnswer>([&](auto done) { resolver.ptr(ip, done); });
  }

  dns::Resolver resolver;
};

// A zone under "test." with the SOA every DNS test uses: its minimum (60 s) bounds negative
// caching. `records` follow it, one per line.
inline std::string test_zone(std::string_view records) {
  return "$TTL 300\ntest. SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n" +
         std::string(records);
}

// The preamble of a DNS unit test: a real DNS server on loopback serving test_zone(records),
// and a resolver pointed at it.
struct DnsFixture {
  explicit DnsFixture(std::string_view records, std::vector<std::string> servfail = {},
                      std::vector<std::string> silent = {})
      : server(test_zone(records), std::move(servfail), std::move(silent)),
        harness(test_resolver_options(server.address())) {}

  DnsTestServer server;
  ResolverHarness harness;
};

}  // namespace relayq::test
