// check_spf(): the identity to check (RFC 7208 2.4 and 4.3), the initial checks of its domain,
// then check_host() and, for a fail, the explanation. Runs on the caller's thread.
#include <algorithm>
#include <ctime>
#include <iterator>
#include <utility>

#include "policy/spf.hpp"
#include "spf_evaluation.hpp"
#include "spf_names.hpp"

namespace relayq::policy {

std::string_view to_string(SpfResult result) {
  switch (result) {
    case SpfResult::none:
      return "none";
    case SpfResult::neutral:
      return "neutral";
    case SpfResult::pass:
      return "pass";
    case SpfResult::fail:
      return "fail";
    case SpfResult::softfail:
      return "softfail";
    case SpfResult::temperror:
      return "temperror";
    case SpfResult::permerror:
      return "permerror";
  }
  return "?";
}

namespace {

// 5/9/2: an IPv4-mapped IPv6 client is an IPv4 client, for ip4:, a, mx and the macros.
dns::IpAddress without_mapping(const dns::IpAddress& address) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!address.v6 || !std::equal(std::begin(kMapped), std::end(kMapped), address.bytes.begin())) {
    return address;
  }
  return dns::IpAddress::from_bytes(false, address.bytes.data() + 12);
}

// 2.4: the null sender is checked as postmaster@<HELO name>; 4.3: a sender without a local
// part is postmaster too.
spf::MacroValues values_of(const SpfQuery& query) {
  spf::MacroValues values;
  const auto at = query.sender.rfind('@');
  if (query.sender.empty()) {
    values.sender_domain = query.helo;
  } else if (at != std::string::npos) {
    values.local_part = query.sender.substr(0, at);
    values.sender_domain = query.sender.substr(at + 1);
  }
  if (values.local_part.empty()) values.local_part = "postmaster";
  values.sender = values.local_part + "@" + values.sender_domain;
  values.client = without_mapping(query.client);
  values.helo = query.helo;
  values.receiver = query.receiver;
  values.timestamp = static_cast<std::int64_t>(std::time(nullptr));
  return values;
}

}  // namespace

void check_spf(SpfDns& dns, const SpfQuery& query, std::function<void(SpfVerdict)> done) {
  spf::MacroValues values = values_of(query);
  SpfVerdict verdict;
  verdict.domain = values.sender_domain;
  // 4.3: a malformed or single-label domain (a domain literal, an over-long label) has no
  // record to find.
  if (!spf::is_valid_domain(verdict.domain)) {
    verdict.problem = "not a valid domain name";
    done(std::move(verdict));
    return;
  }
  std::string domain = *spf::query_name(verdict.domain);
  auto evaluation = std::make_shared<spf::Evaluation>(dns, std::move(values));
  evaluation->post([evaluation, domain = std::move(domain), verdict = std::move(verdict),
                    done = std::move(done)]() mutable {
    spf::check_host(evaluation, domain, 0,
                    [evaluation, verdict = std::move(verdict),
                     done = std::move(done)](spf::Outcome outcome) mutable {
                      verdict.result = outcome.result;
                      verdict.problem = std::move(outcome.problem);
                      if (outcome.result != SpfResult::fail || !outcome.explanation) {
                        return done(std::move(verdict));
                      }
                      spf::explain(evaluation, outcome,
                                   [verdict = std::move(verdict),
                                    done = std::move(done)](std::string text) mutable {
                                     verdict.explanation = std::move(text);
                                     done(std::move(verdict));
                                   });
                    });
  });
}

}  // namespace relayq::policy
