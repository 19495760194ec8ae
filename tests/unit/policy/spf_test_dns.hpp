// An in-memory SpfDns for the SPF unit tests: records added by name, every query logged, names
// that fail temporarily, and answers held back until the test releases them (to exercise the
// asynchronous path). Single-threaded, like an evaluation.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dns/domain_name.hpp"
#include "policy/spf.hpp"
#include "support/addresses.hpp"

namespace relayq::test {

class SpfTestDns : public policy::SpfDns {
 public:
  SpfTestDns& txt_record(const std::string& name, std::string text) {
    txt_[key(name)].push_back(std::move(text));
    return *this;
  }
  SpfTestDns& address(const std::string& name, std::string_view text) {
    const auto parsed = ip(text);
    (parsed.v6 ? aaaa_ : a_)[key(name)].push_back(parsed);
    return *this;
  }
  SpfTestDns& mx_record(const std::string& name, std::uint16_t preference, std::string host) {
    mx_[key(name)].push_back({preference, std::move(host)});
    return *this;
  }
  SpfTestDns& ptr_record(std::string_view client, std::string name) {
    ptr_[ip(client).to_string()].push_back(std::move(name));
    return *this;
  }
  // Every lookup of `name` fails as SERVFAIL or a timeout would.
  SpfTestDns& failing(const std::string& name) {
    failing_.insert(key(name));
    return *this;
  }

  // While true, answers wait in a queue until release() delivers them.
  bool hold_answers = false;
  std::size_t release() {
    std::size_t delivered = 0;
    while (!held_.empty()) {
      auto answer = std::move(held_.front());
      held_.pop_front();
      answer();
      ++delivered;
    }
    return delivered;
  }

  // "TXT example.com", "A mail.example.com", "PTR 192.0.2.1", ... in the order asked.
  std::vector<std::string> queries;
  // The stack address at each query, to show that synchronous answers do not nest.
  std::vector<std::uintptr_t> stack_at_query;

  void txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) override {
    answer<dns::TextAnswer>("TXT", name, txt_, &dns::TextAnswer::records, std::move(done));
  }
  void a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override {
    answer<dns::AddressAnswer>("A", name, a_, &dns::AddressAnswer::addresses, std::move(done));
  }
  void aaaa(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) override {
    answer<dns::AddressAnswer>("AAAA", name, aaaa_, &dns::AddressAnswer::addresses,
                               std::move(done));
  }
  void mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) override {
    answer<dns::MxAnswer>("MX", name, mx_, &dns::MxAnswer::records, std::move(done));
  }
  void ptr(const dns::IpAddress& address,
           std::function<void(const dns::NameAnswer&)> done) override {
    answer<dns::NameAnswer>("PTR", address.to_string(), ptr_, &dns::NameAnswer::names,
                            std::move(done));
  }

 private:
  static std::string key(const std::string& name) { return dns::lower_case(name); }

  bool exists(const std::string& name) const {
    return txt_.count(name) || a_.count(name) || aaaa_.count(name) || mx_.count(name) ||
           ptr_.count(name);
  }

  template <class Answer, class Records>
  void answer(const char* type, const std::string& name,
              const std::map<std::string, Records>& table, Records Answer::*field,
              std::function<void(const Answer&)> done) {
    queries.push_back(std::string(type) + " " + name);
    const char marker = 0;
    stack_at_query.push_back(reinterpret_cast<std::uintptr_t>(&marker));
    Answer answer;
    const std::string wanted = key(name);
    const auto found = table.find(wanted);
    if (failing_.count(wanted)) {
      answer.status = dns::Status::temporary;
      answer.error = name + " " + type + ": timed out";
    } else if (found != table.end()) {
      answer.status = dns::Status::ok;
      answer.*field = found->second;
    } else {
      answer.status = exists(wanted) ? dns::Status::nodata : dns::Status::nxdomain;
      answer.error = name + " " + type + ": " + std::string(dns::to_string(answer.status));
    }
    if (hold_answers) {
      held_.push_back([done = std::move(done), answer] { done(answer); });
    } else {
      done(answer);
    }
  }

  std::map<std::string, std::vector<std::string>> txt_;
  std::map<std::string, std::vector<dns::IpAddress>> a_, aaaa_;
  std::map<std::string, std::vector<dns::MxRecord>> mx_;
  std::map<std::string, std::vector<std::string>> ptr_;
  std::set<std::string> failing_;
  std::deque<std::function<void()>> held_;
};

// Runs check_spf to completion (releasing held answers as they come) and returns the verdict.
inline policy::SpfVerdict check(SpfTestDns& dns, std::string_view client, std::string sender,
                                std::string helo = "mail.example.com",
                                std::string receiver = "mx.receiver.example") {
  policy::SpfQuery query{ip(client), std::move(sender), std::move(helo), std::move(receiver)};
  int calls = 0;
  policy::SpfVerdict verdict;
  policy::check_spf(dns, query, [&](policy::SpfVerdict result) {
    ++calls;
    verdict = std::move(result);
  });
  while (dns.release() > 0) {
  }
  REQUIRE(calls == 1);
  return verdict;
}

}  // namespace relayq::test
