// SPF (RFC 7208): check_host() for a client, its MAIL FROM and HELO, over an abstract
// asynchronous DNS. One evaluation runs on one thread at a time (whichever calls check_spf and
// delivers the DNS answers); every callback runs on that thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"
#include "dns/resolver.hpp"

namespace relayq::policy {

enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };
// "none", "neutral", "pass", ... as RFC 8601/7208 spell them.
std::string_view to_string(SpfResult result);

struct SpfQuery {
  dns::IpAddress client;
  std::string sender;    // MAIL FROM address (local@domain), empty for the null sender <>
  std::string helo;      // HELO/EHLO argument
  std::string receiver;  // our host name, for %{r}
};

struct SpfVerdict {
  SpfResult result = SpfResult::none;
  // The domain checked: the sender's, or the HELO name for <> (and "postmaster@helo" is the
  // sender then, per RFC 7208 2.4).
  std::string domain;
  std::string explanation;  // for fail: the exp= text, if any
  // For permerror/temperror/none: a short reason for logs ("no SPF record", "2 records", "too
  // many DNS lookups", ...).
  std::string problem;
};

// The lookups check_host() needs, asynchronous: each callback is called exactly once, possibly
// synchronously from inside the call. Implemented over dns::Resolver by the daemon and by an
// in-memory zone in tests.
class SpfDns {
 public:
  virtual ~SpfDns() = default;
  virtual void txt(const std::string& name, std::function<void(const dns::TextAnswer&)> done) = 0;
  virtual void a(const std::string& name, std::function<void(const dns::AddressAnswer&)> done) = 0;
  virtual void aaaa(const std::string& name,
                    std::function<void(const dns::AddressAnswer&)> done) = 0;
  virtual void mx(const std::string& name, std::function<void(const dns::MxAnswer&)> done) = 0;
  virtual void ptr(const dns::IpAddress& address,
                   std::function<void(const dns::NameAnswer&)> done) = 0;
};

// Evaluates SPF for query (RFC 7208 section 4, check_host() with the sender's domain, or the
// HELO name for the null sender). `done` is called exactly once, possibly synchronously. `dns`
// must outlive the evaluation; the evaluation keeps its own state alive until `done` runs.
void check_spf(SpfDns& dns, const SpfQuery& query, std::function<void(SpfVerdict)> done);

}  // namespace relayq::policy
