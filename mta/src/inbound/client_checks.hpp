// The checks of one connection's client and of each sender it names: reverse DNS with forward
// confirmation ("iprev", RFC 8601 2.7.3), started when the session starts, and SPF (RFC 7208)
// of each MAIL. Their verdict answers the session's SenderCheck; their results go into the
// message's Authentication-Results. Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns/ip_address.hpp"
#include "metrics/metrics.hpp"
#include "mta/inbound/policy_settings.hpp"
#include "mta/smtp/authentication_results.hpp"
#include "mta/smtp/server_session.hpp"
#include "policy/resolver_dns.hpp"
#include "policy/spf.hpp"

namespace relayq::mta {

enum class IprevResult { pass, fail, temperror };

class ClientChecks : public std::enable_shared_from_this<ClientChecks> {
 public:
  using Verdict = std::function<void(SenderVerdict verdict, std::string detail)>;

  ClientChecks(std::shared_ptr<const PolicySettings> settings, policy::ResolverSource resolver,
               metrics::Metrics& metrics, dns::IpAddress client, std::string hostname);

  // Starts the reverse DNS lookup (policy.rdns not off) so that it is done by MAIL.
  void start();
  // Checks the client (waiting for the reverse DNS) and the sender; `done` gets the session's
  // verdict. One check at a time (the session holds its MAIL meanwhile).
  void check_sender(const SenderCheck& check, Verdict done);

  // The results known for the current transaction: iprev, then spf.
  std::vector<AuthResult> results() const;
  // SPF's verdict on the current transaction's sender, for DMARC (nullopt when not checked).
  const std::optional<policy::SpfVerdict>& spf() const { return spf_; }

 private:
  void rdns_done(IprevResult result, std::string name, std::string problem);
  void confirm_names(std::vector<std::string> names);
  void spf_done(policy::SpfVerdict verdict);
  void finish_if_ready();

  std::shared_ptr<const PolicySettings> settings_;
  policy::ResolverDns dns_;
  metrics::Metrics& metrics_;
  dns::IpAddress client_;
  std::string hostname_;

  // Reverse DNS: the result once known, and the name that confirmed it.
  std::optional<IprevResult> iprev_;
  std::string iprev_name_;
  // The check under way: its sender and what answers it.
  std::optional<SenderCheck> check_;
  Verdict done_;
  bool spf_pending_ = false;
  std::optional<policy::SpfVerdict> spf_;
};

}  // namespace relayq::mta
