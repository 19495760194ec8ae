// The RFC 7208 SPF test suite (rfc7208-tests.yml, from the openspf.org project; licence in
// rfc7208-tests.LICENSE) run against policy::check_spf over an in-memory zone built from each
// scenario's zonedata. Prints every failure and the score; exits non-zero unless all pass.
// Single-threaded: the zone answers synchronously, so each check completes inside its call.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dns/domain_name.hpp"
#include "dns/ip_address.hpp"
#include "policy/spf.hpp"

namespace {

using relayq::dns::AddressAnswer;
using relayq::dns::IpAddress;
using relayq::dns::MxAnswer;
using relayq::dns::MxRecord;
using relayq::dns::NameAnswer;
using relayq::dns::Status;
using relayq::dns::TextAnswer;
using relayq::policy::SpfResult;

std::string normalized(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  return relayq::dns::lower_case(name);
}

// One owner name's records as the suite gives them.
struct Node {
  std::vector<std::string> txt;
  std::vector<IpAddress> a, aaaa;
  std::vector<MxRecord> mx;
  std::vector<std::string> ptr;
  std::optional<std::string> cname;
  bool timeout = false;  // "TIMEOUT": every type it has no records of times out
};

// A zone with the suite's conventions: a name's type SPF records are served as TXT too when
// it has no TXT entry at all (the suite's drivers do so, since RFC 7208 reads TXT only), and
// "TXT: NONE" only suppresses that.
class Zone : public relayq::policy::SpfDns {
 public:
  explicit Zone(const YAML::Node& zonedata) {
    for (const auto& entry : zonedata) {
      Node& node = nodes_[normalized(entry.first.as<std::string>())];
      std::vector<std::string> spf;
      bool has_txt = false;
      for (const auto& record : entry.second) {
        if (record.IsScalar()) {  // "TIMEOUT"
          node.timeout = true;
          continue;
        }
        for (const auto& field : record) {
          const auto type = field.first.as<std::string>();
          const YAML::Node& value = field.second;
          if (type == "TXT") {
            has_txt = true;
            if (!(value.IsScalar() && value.as<std::string>() == "NONE")) {
              node.txt.push_back(text_of(value));
            }
          } else if (type == "SPF") {
            spf.push_back(text_of(value));
          } else if (type == "A" || type == "AAAA") {
            const auto address = IpAddress::parse(value.as<std::string>());
            if (!address) throw std::runtime_error("bad address " + value.as<std::string>());
            (type == "A" ? node.a : node.aaaa).push_back(*address);
          } else if (type == "MX") {
            node.mx.push_back(
                {value[0].as<std::uint16_t>(), normalized(value[1].as<std::string>())});
          } else if (type == "PTR") {
            node.ptr.push_back(normalized(value.as<std::string>()));
          } else if (type == "CNAME") {
            node.cname = normalized(value.as<std::string>());
          } else {
            throw std::runtime_error("unknown record type " + type);
          }
        }
      }
      if (!has_txt) node.txt.insert(node.txt.end(), spf.begin(), spf.end());
    }
  }

  void txt(const std::string& name, std::function<void(const TextAnswer&)> done) override {
    TextAnswer answer;
    if (const Node* node = find(name, &Node::txt, answer.status)) answer.records = node->txt;
    done(described(answer, name + " TXT"));
  }
  void a(const std::string& name, std::function<void(const AddressAnswer&)> done) override {
    AddressAnswer answer;
    if (const Node* node = find(name, &Node::a, answer.status)) answer.addresses = node->a;
    done(described(answer, name + " A"));
  }
  void aaaa(const std::string& name, std::function<void(const AddressAnswer&)> done) override {
    AddressAnswer answer;
    if (const Node* node = find(name, &Node::aaaa, answer.status)) answer.addresses = node->aaaa;
    done(described(answer, name + " AAAA"));
  }
  void mx(const std::string& name, std::function<void(const MxAnswer&)> done) override {
    MxAnswer answer;
    if (const Node* node = find(name, &Node::mx, answer.status)) answer.records = node->mx;
    done(described(answer, name + " MX"));
  }
  void ptr(const IpAddress& address, std::function<void(const NameAnswer&)> done) override {
    NameAnswer answer;
    const std::string name = relayq::dns::reverse_name(address);
    if (const Node* node = find(name, &Node::ptr, answer.status)) answer.names = node->ptr;
    done(described(answer, name + " PTR"));
  }

 private:
  // Failures carry a text, as the resolver's do, for the evaluator's problem strings.
  template <class Answer>
  static Answer& described(Answer& answer, const std::string& question) {
    if (answer.status != Status::ok) {
      answer.error = question + ": " + std::string(relayq::dns::to_string(answer.status));
    }
    return answer;
  }

  // A TXT or SPF value: one string, or a list of strings joined without separator.
  static std::string text_of(const YAML::Node& value) {
    if (!value.IsSequence()) return value.as<std::string>();
    std::string joined;
    for (const auto& part : value) joined += part.as<std::string>();
    return joined;
  }

  // The node holding `name`'s records of one type, following CNAMEs; null with the status
  // (NXDOMAIN, NODATA, or temporary for TIMEOUT and CNAME loops) when there are none.
  template <class Records>
  const Node* find(const std::string& name, Records Node::*records, Status& status) const {
    std::string current = normalized(name);
    for (int hops = 0; hops < 10; ++hops) {
      const auto found = nodes_.find(current);
      if (found == nodes_.end()) {
        status = Status::nxdomain;
        return nullptr;
      }
      const Node& node = found->second;
      if (!(node.*records).empty()) {
        status = Status::ok;
        return &node;
      }
      if (!node.cname) {
        status = node.timeout ? Status::temporary : Status::nodata;
        return nullptr;
      }
      current = *node.cname;
    }
    status = Status::temporary;  // a CNAME chain that does not end
    return nullptr;
  }

  std::map<std::string, Node> nodes_;
};

std::set<std::string> accepted_results(const YAML::Node& result) {
  std::set<std::string> accepted;
  if (result.IsSequence()) {
    for (const auto& one : result) accepted.insert(one.as<std::string>());
  } else {
    accepted.insert(result.as<std::string>());
  }
  return accepted;
}

std::string joined(const std::set<std::string>& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : "|") + value;
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: spf_conformance rfc7208-tests.yml\n";
    return 2;
  }
  int total = 0;
  int passed = 0;
  for (const YAML::Node& scenario : YAML::LoadAllFromFile(argv[1])) {
    Zone zone(scenario["zonedata"]);
    const auto description = scenario["description"].as<std::string>();
    for (const auto& test : scenario["tests"]) {
      const auto name = test.first.as<std::string>();
      const YAML::Node& spec = test.second;
      ++total;
      relayq::policy::SpfQuery query;
      const auto client = IpAddress::parse(spec["host"].as<std::string>());
      if (!client) throw std::runtime_error("bad host in " + name);
      query.client = *client;
      query.sender = spec["mailfrom"].as<std::string>();
      query.helo = spec["helo"].as<std::string>();
      query.receiver = "localhost";
      std::optional<relayq::policy::SpfVerdict> verdict;
      int calls = 0;
      relayq::policy::check_spf(zone, query, [&](relayq::policy::SpfVerdict result) {
        ++calls;
        verdict = std::move(result);
      });
      const auto accepted = accepted_results(spec["result"]);
      std::string failure;
      if (calls != 1) {
        failure = "done called " + std::to_string(calls) + " times";
      } else if (!accepted.count(std::string(to_string(verdict->result)))) {
        failure = "expected " + joined(accepted) + ", got " +
                  std::string(to_string(verdict->result)) + " (" + verdict->problem + ")";
      } else if (spec["explanation"]) {
        // "DEFAULT" is the drivers' default explanation: no exp= text applies.
        auto expected = spec["explanation"].as<std::string>();
        if (expected == "DEFAULT") expected.clear();
        if (verdict->explanation != expected) {
          failure =
              "expected explanation \"" + expected + "\", got \"" + verdict->explanation + "\"";
        }
      }
      if (failure.empty()) {
        ++passed;
      } else {
        std::cout << "FAIL " << description << " / " << name << ": " << failure << "\n";
      }
    }
  }
  std::cout << "RFC 7208 SPF suite: " << passed << "/" << total << " passed\n";
  return passed == total ? 0 : 1;
}
