// Where mail for a domain goes (RFC 5321 section 5): MX hosts by preference, random among equal
// preferences, the implicit MX when there is none, null MX (RFC 7505), and their addresses.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

namespace relayq::dns {

struct NextHop {
  std::string host;  // MX host (or the domain itself for the implicit MX / a route's host)
  IpAddress address;
  std::uint16_t port = 25;
  std::uint16_t preference = 0;
};

enum class NextHopStatus {
  ok,         // try `hops` in order
  bounce,     // permanent: null MX (5.1.10), NXDOMAIN (5.1.2), no host with an address (5.4.4)
  temporary,  // SERVFAIL or timeouts: defer (4.4.3)
};

struct NextHopResult {
  NextHopStatus status = NextHopStatus::temporary;
  std::vector<NextHop> hops;  // ordered: preference, then random among equals, v6 then v4
  std::string enhanced_code;  // "5.1.10", "5.1.2", "5.4.4", "4.4.3" when not ok
  std::string reason;         // human text for the attempt history and the DSN
};

// Orders MX records by preference, shuffling equal ones with `random` (RFC 5321 5.1).
std::vector<MxRecord> order_mx(std::vector<MxRecord> records, std::mt19937& random);

// Resolves the next hops for a recipient domain: MX then each host's addresses (in parallel).
// An MX host that has no address is skipped; only when no host has one is the result a failure
// (temporary if some host's lookup was). No MX at all means the implicit MX: the domain's own
// addresses. An address literal ("[192.0.2.1]") is used as it is. `random` is drawn from before
// this returns, so it need not outlive the lookup; `resolver` must.
void resolve_domain(Resolver& resolver, const std::string& domain, std::uint16_t port,
                    std::mt19937& random, std::function<void(NextHopResult)> done);

// Resolves a configured "host:port" next hop (smarthost, route): an IP literal ("192.0.2.1",
// "2001:db8::1", "[192.0.2.1]", "[IPv6:2001:db8::1]") is used as it is, a name goes through
// A/AAAA (no MX lookup); a name without addresses bounces (5.4.4).
void resolve_host(Resolver& resolver, const std::string& host, std::uint16_t port,
                  std::function<void(NextHopResult)> done);

}  // namespace relayq::dns
