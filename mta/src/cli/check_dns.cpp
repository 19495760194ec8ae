// `relayq check-dns`: every check starts at once on the command's loop and c-ares resolver, and
// its line is printed, in a fixed order, once it and every line before it are known. The answers
// come from DNS: only names, addresses and what relayq parsed of a record are printed, never a
// record's raw text. Main thread.
#include "cli/check_dns.hpp"

#include <fmt/core.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/domain_name.hpp"
#include "dns/ip_address.hpp"
#include "dns/resolver.hpp"
#include "mta/cli/dns_records.hpp"
#include "mta/config/config.hpp"
#include "mta/daemon/dkim_keys.hpp"
#include "policy/dkim.hpp"
#include "policy/dmarc.hpp"
#include "policy/resolver_dns.hpp"
#include "policy/spf.hpp"

namespace relayq::mta {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

enum class Outcome { pass, fail, skip };

struct Finding {
  Outcome outcome = Outcome::fail;
  std::string text;     // what was found, or why the check did not run
  std::string publish;  // for a failure DNS can fix: the record to publish
};

Finding passed(std::string text) {
  return {Outcome::pass, std::move(text), ""};
}
Finding failed(std::string text, std::string publish = "") {
  return {Outcome::fail, std::move(text), std::move(publish)};
}
Finding skipped(std::string text) {
  return {Outcome::skip, std::move(text), ""};
}

// The lines in the order they were added; a line is printed once it and all before it are
// known, so slow answers hold the output back but never reorder it.
class Report {
 public:
  std::size_t add(std::string subject) {
    lines_.push_back({std::move(subject), std::nullopt});
    return lines_.size() - 1;
  }

  void set(std::size_t line, Finding finding) {
    if (finding.outcome == Outcome::fail) any_failed_ = true;
    lines_[line].finding = std::move(finding);
    for (; printed_ < lines_.size() && lines_[printed_].finding; ++printed_)
      print(lines_[printed_]);
  }

  bool any_failed() const { return any_failed_; }

 private:
  struct Line {
    std::string subject;  // "mx example.com"
    std::optional<Finding> finding;
  };

  static void print(const Line& line) {
    const Finding& finding = *line.finding;
    const std::string_view word = finding.outcome == Outcome::pass   ? "pass"
                                  : finding.outcome == Outcome::fail ? "FAIL"
                                                                     : "skip";
    fmt::print("{}  {}: {}", word, line.subject, finding.text);
    if (!finding.publish.empty()) fmt::print("; publish: {}", finding.publish);
    fmt::print("\n");
    std::fflush(stdout);  // a line as soon as it is known, even into a pipe
  }

  std::vector<Line> lines_;
  std::size_t printed_ = 0;
  bool any_failed_ = false;
};

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

std::string joined(const std::vector<dns::IpAddress>& addresses) {
  std::string text;
  for (const auto& address : addresses) text += (text.empty() ? "" : ", ") + address.to_string();
  return text;
}

// The domains this server receives mail for: relay.domains and the [routes."domain"] keys.
std::set<std::string> local_domains(const Config& config) {
  std::set<std::string> domains(config.relay.domains.begin(), config.relay.domains.end());
  for (const auto& route : config.routes) domains.insert(route.first);
  return domains;
}

class DnsChecks {
 public:
  DnsChecks(const Config& config, std::optional<dns::IpAddress> ip,
            std::vector<std::shared_ptr<const policy::DkimSigner>> signers, dns::Resolver& resolver)
      : config_(config),
        host_(config.server.hostname),
        ip_(ip),
        signers_(std::move(signers)),
        resolver_(resolver),
        spf_dns_([&resolver]() -> dns::Resolver& { return resolver; }) {}

  // Adds every line, in the order printed, and starts its lookups.
  void start() {
    check_hostname();
    check_address();
    check_ptr();
    const std::set<std::string> domains = local_domains(config_);
    for (const auto& domain : domains) check_mx(domain);
    for (const auto& domain : domains) check_spf(domain);
    std::set<std::string> dmarc_domains = domains;
    for (std::size_t i = 0; i < signers_.size(); ++i) {
      check_dkim(*signers_[i], config_.dkim_sign[i].key);
      dmarc_domains.insert(signers_[i]->domain());
    }
    for (const auto& domain : dmarc_domains) check_dmarc(domain);
  }

  bool any_failed() const { return report_.any_failed(); }

 private:
  // What the PTR and SPF checks say without --ip.
  std::string needs_ip() const {
    return fmt::format(
        "needs this server's public address: relayq check-dns --config {} --ip ADDRESS",
        config_.path);
  }

  void check_hostname() {
    const auto line = report_.add("hostname");
    if (is_fully_qualified(host_)) return report_.set(line, passed(host_ + " is fully qualified"));
    report_.set(line,
                failed(fmt::format("{} is not a fully qualified name: set server.hostname ({}) "
                                   "to this server's name in DNS",
                                   host_, config_.where("server.hostname"))));
  }

  void check_address() {
    const auto line = report_.add("address " + host_);
    resolver_.addresses(host_, [this, line](const dns::AddressAnswer& answer) {
      switch (answer.status) {
        case dns::Status::ok:
          return report_.set(line, passed(joined(answer.addresses)));
        case dns::Status::temporary:
          return report_.set(line, failed("lookup failed: " + answer.error));
        case dns::Status::nxdomain:
        case dns::Status::nodata:
          break;
      }
      report_.set(line, failed("no A or AAAA record", address_record(host_, ip_)));
    });
  }

  // Forward-confirmed reverse DNS (FCrDNS): the address's PTR names this host, and this host's
  // A/AAAA records have the address. Receivers check it (iprev), and many refuse without it.
  void check_ptr() {
    if (!ip_) return report_.set(report_.add("ptr"), skipped(needs_ip()));
    const std::string address = ip_->to_string();
    const auto line = report_.add("ptr " + address);
    resolver_.ptr(address, [this, line, address](const dns::NameAnswer& answer) {
      // Only the address's owner (the hosting or network provider) can set its PTR record.
      const std::string publish = ptr_record(*ip_, host_) + " (at the address's owner)";
      if (answer.status == dns::Status::temporary)
        return report_.set(line, failed("lookup failed: " + answer.error));
      if (answer.status != dns::Status::ok || answer.names.empty())
        return report_.set(line, failed("no PTR record", publish));
      if (std::none_of(answer.names.begin(), answer.names.end(),
                       [this](const std::string& name) { return dns::same_name(name, host_); })) {
        return report_.set(
            line,
            failed(fmt::format("PTR names {}, not {}", joined(answer.names), host_), publish));
      }
      resolver_.addresses(host_, [this, line, address](const dns::AddressAnswer& forward) {
        if (forward.status == dns::Status::temporary)
          return report_.set(line, failed("lookup failed: " + forward.error));
        if (std::find(forward.addresses.begin(), forward.addresses.end(), *ip_) !=
            forward.addresses.end()) {
          return report_.set(line,
                             passed(fmt::format("PTR names {}, which has {}", host_, address)));
        }
        report_.set(line, failed(fmt::format("PTR names {}, but its A/AAAA records do not have {}",
                                             host_, address),
                                 address_record(host_, ip_)));
      });
    });
  }

  void check_mx(const std::string& domain) {
    const auto line = report_.add("mx " + domain);
    resolver_.mx(domain, [this, line, domain](const dns::MxAnswer& answer) {
      const std::string publish = mx_record(domain, host_);
      if (answer.status == dns::Status::temporary)
        return report_.set(line, failed("lookup failed: " + answer.error));
      if (answer.status != dns::Status::ok || answer.records.empty())
        return report_.set(line, failed("no MX record", publish));
      // RFC 7505: one MX to "." says the domain takes no mail at all.
      if (answer.records.size() == 1 && answer.records.front().host.empty())
        return report_.set(line, failed("a null MX: the domain says it takes no mail", publish));
      std::vector<std::string> hosts;
      for (const dns::MxRecord& record : answer.records) {
        if (dns::same_name(record.host, host_))
          return report_.set(line,
                             passed(fmt::format("{} (preference {})", host_, record.preference)));
        hosts.push_back(record.host);
      }
      report_.set(line, failed(fmt::format("MX names {}, not {}", joined(hosts), host_), publish));
    });
  }

  // SPF as a receiver evaluates it for mail from postmaster@domain sent from --ip.
  void check_spf(const std::string& domain) {
    const auto line = report_.add("spf " + domain);
    if (!ip_) return report_.set(line, skipped(needs_ip()));
    const policy::SpfQuery query{*ip_, "postmaster@" + domain, host_, host_};
    policy::check_spf(spf_dns_, query, [this, line, domain](const policy::SpfVerdict& verdict) {
      const std::string address = ip_->to_string();
      const std::string publish = spf_record(domain, *ip_);
      switch (verdict.result) {
        case policy::SpfResult::pass:
          return report_.set(line, passed(fmt::format("pass for {}", address)));
        case policy::SpfResult::none:
          return report_.set(line, failed("no SPF record", publish));
        case policy::SpfResult::temperror:
          return report_.set(line, failed("SPF lookup failed: " + verdict.problem));
        case policy::SpfResult::permerror:
          return report_.set(line, failed("the SPF record is broken: " + verdict.problem, publish));
        case policy::SpfResult::fail:
        case policy::SpfResult::softfail:
        case policy::SpfResult::neutral:
          break;
      }
      report_.set(
          line, failed(fmt::format("{}: the SPF record does not authorize {} (add {} to it)",
                                   policy::to_string(verdict.result), address, spf_mechanism(*ip_)),
                       publish));
    });
  }

  // The key record must hold the signer's public key: the p= that `relayq dkim-record` prints.
  void check_dkim(const policy::DkimSigner& signer, const std::string& key_path) {
    const std::string name = signer.selector() + "._domainkey." + signer.domain();
    const auto line = report_.add("dkim " + name);
    resolver_.txt(name, [this, line, &signer, key_path](const dns::TextAnswer& answer) {
      const std::string publish =
          dkim_record(signer.selector(), signer.domain(), signer.dns_record());
      if (answer.status == dns::Status::temporary)
        return report_.set(line, failed("lookup failed: " + answer.error));
      if (answer.status != dns::Status::ok)
        return report_.set(line, failed("no key record", publish));
      const std::string key = policy::dkim_record_key(signer.dns_record());
      for (const std::string& record : answer.records) {
        if (policy::dkim_record_key(record) == key)
          return report_.set(line, passed("publishes the key of " + key_path));
      }
      report_.set(line, failed("no record there has the key of " + key_path, publish));
    });
  }

  void check_dmarc(const std::string& domain) {
    const auto line = report_.add("dmarc " + domain);
    resolver_.txt("_dmarc." + domain, [this, line, domain](const dns::TextAnswer& answer) {
      const std::string publish = dmarc_record(domain);
      if (answer.status == dns::Status::temporary)
        return report_.set(line, failed("lookup failed: " + answer.error));
      std::vector<std::string_view> records;
      for (const std::string& record : answer.records)
        if (policy::is_dmarc_record(record)) records.push_back(record);
      if (records.empty()) return report_.set(line, failed("no DMARC record", publish));
      // RFC 7489 6.6.3: with more than one, receivers apply none.
      if (records.size() > 1) {
        return report_.set(
            line, failed(fmt::format("{} DMARC records, so none applies: keep one", records.size()),
                         publish));
      }
      const auto record = policy::parse_dmarc_record(records.front());
      if (!record) return report_.set(line, failed("the DMARC record has no valid p=", publish));
      report_.set(line, passed(fmt::format("p={}", policy::to_string(record->policy))));
    });
  }

  const Config& config_;
  const std::string& host_;
  const std::optional<dns::IpAddress> ip_;
  const std::vector<std::shared_ptr<const policy::DkimSigner>> signers_;
  dns::Resolver& resolver_;
  policy::ResolverDns spf_dns_;
  Report report_;
};

}  // namespace

int check_dns(const std::string& config_path, const std::string& ip_text) {
  Config config;
  std::vector<std::shared_ptr<const policy::DkimSigner>> signers;
  try {
    config = load_config(config_path);
    signers = load_dkim_signers(config);
  } catch (const ConfigError& error) {
    std::cerr << error.what() << "\n";
    return kExitUsage;
  }
  std::optional<dns::IpAddress> ip;
  if (!ip_text.empty()) {
    ip = dns::IpAddress::parse(ip_text);
    if (!ip) {
      std::cerr << "relayq: --ip: not an IP address: " << ip_text << "\n";
      return kExitUsage;
    }
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = kExitFailure;
  try {
    dns::Resolver resolver(&loop, {.servers = config.dns.servers}, dns::make_cache());
    DnsChecks checks(config, ip, std::move(signers), resolver);
    checks.start();
    uv_run(&loop, UV_RUN_DEFAULT);  // until every lookup has answered
    code = checks.any_failed() ? kExitFailure : kExitOk;
  } catch (const std::exception& error) {  // c-ares could not start
    std::cerr << "relayq: " << error.what() << "\n";
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the resolver's handles close
  uv_loop_close(&loop);
  return code;
}

}  // namespace relayq::mta
