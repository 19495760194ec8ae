// Reverse DNS with forward confirmation and SPF for one connection, on the loop's resolver.
// Loop thread only: every callback runs there.
#include "inbound/client_checks.hpp"

#include <spdlog/spdlog.h>

#include "mta/common/log_format.hpp"

namespace relayq::mta {

namespace {

// At most this many PTR names are confirmed, as RFC 7208 5.5 limits its ptr mechanism: a
// client's address with more names than that is not trying to be confirmed.
constexpr std::size_t kMaxPtrNames = 10;

std::string_view to_string(IprevResult result) {
  switch (result) {
    case IprevResult::pass:
      return "pass";
    case IprevResult::fail:
      return "fail";
    case IprevResult::temperror:
      return "temperror";
  }
  return "permerror";
}

}  // namespace

ClientChecks::ClientChecks(std::shared_ptr<const PolicySettings> settings,
                           policy::ResolverSource resolver, metrics::Metrics& metrics,
                           dns::IpAddress client, std::string hostname)
    : settings_(std::move(settings)),
      dns_(std::move(resolver)),
      metrics_(metrics),
      client_(client),
      hostname_(std::move(hostname)) {}

void ClientChecks::start() {
  if (settings_->rdns == RdnsMode::off) return;
  dns_.ptr(client_, [self = shared_from_this()](const dns::NameAnswer& answer) {
    switch (answer.status) {
      case dns::Status::ok:
        return self->confirm_names(answer.names);
      case dns::Status::nxdomain:
      case dns::Status::nodata:
        return self->rdns_done(IprevResult::fail, "", "no PTR record");
      case dns::Status::temporary:
        return self->rdns_done(IprevResult::temperror, "", "PTR lookup: " + answer.error);
    }
  });
}

// Forward confirmation: some name of the address must have the address among its own.
void ClientChecks::confirm_names(std::vector<std::string> names) {
  if (names.size() > kMaxPtrNames) names.resize(kMaxPtrNames);
  if (names.empty()) return rdns_done(IprevResult::fail, "", "no PTR record");
  struct Confirmation {
    std::size_t pending = 0;
    bool temporary = false;
    bool decided = false;
  };
  auto confirmation = std::make_shared<Confirmation>();
  confirmation->pending = names.size();
  for (const std::string& name : names) {
    auto answered = [self = shared_from_this(), confirmation, name](const dns::AddressAnswer& a) {
      if (confirmation->decided) return;
      --confirmation->pending;
      if (a.status == dns::Status::temporary) confirmation->temporary = true;
      for (const dns::IpAddress& address : a.addresses) {
        if (address == self->client_) {
          confirmation->decided = true;
          return self->rdns_done(IprevResult::pass, name, "");
        }
      }
      if (confirmation->pending > 0) return;
      confirmation->decided = true;
      if (confirmation->temporary) {
        self->rdns_done(IprevResult::temperror, "", "address lookup of a PTR name failed");
      } else {
        self->rdns_done(IprevResult::fail, "", "no PTR name has the address");
      }
    };
    if (client_.v6) {
      dns_.aaaa(name, std::move(answered));
    } else {
      dns_.a(name, std::move(answered));
    }
  }
}

void ClientChecks::rdns_done(IprevResult result, std::string name, std::string problem) {
  iprev_ = result;
  iprev_name_ = std::move(name);
  metrics_
      .policy_result(metrics::PolicyCheck::rdns, metrics::policy_result_named(to_string(result)))
      .Increment();
  if (result != IprevResult::pass) {
    spdlog::info("event=rdns client={} result={} reason={}", client_.to_string(), to_string(result),
                 quoted(problem));
  }
  finish_if_ready();
}

void ClientChecks::check_sender(const SenderCheck& check, Verdict done) {
  check_ = check;
  done_ = std::move(done);
  spf_.reset();
  if (settings_->spf != SpfMode::off) {
    spf_pending_ = true;
    const policy::SpfQuery query{client_, check.sender, check.helo, hostname_};
    policy::check_spf(dns_, query, [self = shared_from_this()](policy::SpfVerdict verdict) {
      self->spf_done(std::move(verdict));
    });
  }
  finish_if_ready();
}

void ClientChecks::spf_done(policy::SpfVerdict verdict) {
  spf_pending_ = false;
  metrics_
      .policy_result(metrics::PolicyCheck::spf,
                     metrics::policy_result_named(policy::to_string(verdict.result)))
      .Increment();
  // A pass is in the message's event=checked line; anything else says why here.
  if (verdict.result != policy::SpfResult::pass) {
    spdlog::info("event=spf client={} domain={} result={} reason={}", client_.to_string(),
                 quoted(verdict.domain), to_string(verdict.result), quoted(verdict.problem));
  }
  spf_ = std::move(verdict);
  finish_if_ready();
}

// Once both checks have answered, the session hears the verdict: a client refused for its
// reverse DNS first (whoever it sends for), then a sender refused by SPF.
void ClientChecks::finish_if_ready() {
  if (!done_ || spf_pending_) return;
  if (settings_->rdns != RdnsMode::off && !iprev_) return;
  Verdict done = std::exchange(done_, nullptr);
  const std::string client = client_.to_string();
  if (settings_->rdns == RdnsMode::require && *iprev_ != IprevResult::pass) {
    return done(*iprev_ == IprevResult::temperror ? SenderVerdict::rdns_temporary
                                                  : SenderVerdict::rdns_failed,
                client);
  }
  if (settings_->spf == SpfMode::reject && spf_) {
    if (spf_->result == policy::SpfResult::fail) {
      std::string detail = spf_->explanation;
      if (detail.empty())
        detail = "SPF fail: " + spf_->domain + " does not allow " + client + " to send its mail";
      return done(SenderVerdict::spf_failed, std::move(detail));
    }
    if (spf_->result == policy::SpfResult::temperror) return done(SenderVerdict::spf_temporary, "");
  }
  done(SenderVerdict::accepted, "");
}

std::vector<AuthResult> ClientChecks::results() const {
  std::vector<AuthResult> results;
  if (iprev_) {
    results.push_back({"iprev",
                       std::string(to_string(*iprev_)),
                       iprev_name_,
                       {{"policy.iprev", client_.to_string()}}});
  }
  if (spf_ && check_) {
    // RFC 8601 2.7.2: the identity checked, MAIL FROM's or (for <>) the HELO name.
    AuthResult spf{"spf", std::string(policy::to_string(spf_->result)), "", {}};
    if (check_->sender.empty()) {
      spf.properties.emplace_back("smtp.helo", check_->helo);
    } else {
      spf.properties.emplace_back("smtp.mailfrom", check_->sender);
    }
    results.push_back(std::move(spf));
  }
  return results;
}

}  // namespace relayq::mta
