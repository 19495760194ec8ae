// Next-hop selection per RFC 5321 section 5.1: MX hosts by preference, random among equals,
// the implicit MX, null MX (RFC 7505), then every host's addresses, IPv6 before IPv4.
#include "dns/nexthop.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "names.hpp"

namespace relayq::dns {
namespace {

using Done = std::function<void(NextHopResult)>;

NextHopResult failed(NextHopStatus status, std::string code, std::string reason) {
  NextHopResult result;
  result.status = status;
  result.enhanced_code = std::move(code);
  result.reason = std::move(reason);
  return result;
}

NextHopResult deferred(const std::string& error) {
  return failed(NextHopStatus::temporary, "4.4.3", "DNS lookup failed: " + error);
}

NextHopResult literal_hop(const IpAddress& address, std::uint16_t port) {
  NextHopResult result;
  result.status = NextHopStatus::ok;
  result.hops.push_back({address.to_string(), address, port, 0});
  return result;
}

void add_hops(NextHopResult& result, const std::string& host, const AddressAnswer& answer,
              std::uint16_t port, std::uint16_t preference) {
  for (const auto& address : answer.addresses)
    result.hops.push_back({host, address, port, preference});
}

// The MX hosts' address lookups, run in parallel; hops are built in MX order once all are in.
struct HostLookups {
  std::vector<MxRecord> hosts;
  std::vector<AddressAnswer> answers;
  std::size_t pending = 0;
  std::uint16_t port = 25;
  Done done;

  void finish() {
    NextHopResult result;
    std::string errors;
    bool any_temporary = false;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      if (answers[i].status == Status::ok)
        add_hops(result, hosts[i].host, answers[i], port, hosts[i].preference);
      any_temporary = any_temporary || answers[i].status == Status::temporary;
      if (!answers[i].error.empty()) errors += (errors.empty() ? "" : "; ") + answers[i].error;
    }
    if (!result.hops.empty()) {
      result.status = NextHopStatus::ok;
      done(std::move(result));
    } else if (any_temporary) {
      done(deferred(errors));
    } else {
      done(failed(NextHopStatus::bounce, "5.4.4", "no MX host has an address: " + errors));
    }
  }
};

void resolve_mx_hosts(Resolver& resolver, std::vector<MxRecord> records, std::uint16_t port,
                      std::uint32_t seed, Done done) {
  std::erase_if(records, [](const MxRecord& record) { return record.host.empty(); });
  std::mt19937 random(seed);
  records = order_mx(std::move(records), random);
  // A host listed twice is tried once, at its best preference.
  auto lookups = std::make_shared<HostLookups>();
  for (auto& record : records) {
    const auto same = [&record](const MxRecord& kept) { return kept.host == record.host; };
    if (std::none_of(lookups->hosts.begin(), lookups->hosts.end(), same))
      lookups->hosts.push_back(std::move(record));
  }
  lookups->answers.resize(lookups->hosts.size());
  lookups->pending = lookups->hosts.size();
  lookups->port = port;
  lookups->done = std::move(done);
  // pending is complete before the first lookup, which may answer at once from the cache.
  for (std::size_t i = 0; i < lookups->hosts.size(); ++i) {
    resolver.addresses(lookups->hosts[i].host, [lookups, i](const AddressAnswer& answer) {
      lookups->answers[i] = answer;
      if (--lookups->pending == 0) lookups->finish();
    });
  }
}

// RFC 5321 5.1: no MX records, so the domain itself is the mail host, at preference 0.
void resolve_implicit_mx(Resolver& resolver, const std::string& domain, std::uint16_t port,
                         Done done) {
  resolver.addresses(domain, [domain, port, done = std::move(done)](const AddressAnswer& answer) {
    switch (answer.status) {
      case Status::ok: {
        NextHopResult result;
        result.status = NextHopStatus::ok;
        add_hops(result, domain, answer, port, 0);
        return done(std::move(result));
      }
      case Status::nxdomain:
        return done(
            failed(NextHopStatus::bounce, "5.1.2", "domain does not exist: " + answer.error));
      case Status::nodata:
        return done(failed(NextHopStatus::bounce, "5.4.4",
                           "domain has neither MX nor address records: " + answer.error));
      case Status::temporary:
        return done(deferred(answer.error));
    }
  });
}

}  // namespace

std::vector<MxRecord> order_mx(std::vector<MxRecord> records, std::mt19937& random) {
  const auto by_preference = [](const MxRecord& a, const MxRecord& b) {
    return a.preference < b.preference;
  };
  std::sort(records.begin(), records.end(), by_preference);
  for (auto first = records.begin(); first != records.end();) {
    const auto last = std::upper_bound(first, records.end(), *first, by_preference);
    std::shuffle(first, last, random);
    first = last;
  }
  return records;
}

void resolve_domain(Resolver& resolver, const std::string& domain, std::uint16_t port,
                    std::mt19937& random, std::function<void(NextHopResult)> done) {
  if (domain.starts_with('[')) {
    const auto address = parse_address_literal(domain);
    if (!address)
      return done(failed(NextHopStatus::bounce, "5.1.2", "invalid address literal: " + domain));
    return done(literal_hop(*address, port));
  }
  const std::string name = normalize_name(domain);
  const std::uint32_t seed = random();  // the caller's generator may not outlive the lookup
  resolver.mx(name, [&resolver, name, port, seed, done = std::move(done)](const MxAnswer& mx) {
    switch (mx.status) {
      case Status::ok:
        break;
      case Status::nxdomain:
        return done(failed(NextHopStatus::bounce, "5.1.2", "domain does not exist: " + mx.error));
      case Status::nodata:
        return resolve_implicit_mx(resolver, name, port, std::move(done));
      case Status::temporary:
        return done(deferred(mx.error));
    }
    // RFC 7505: a null MX ("." as the only host) says the domain accepts no mail at all.
    const bool null_mx = std::all_of(mx.records.begin(), mx.records.end(),
                                     [](const MxRecord& record) { return record.host.empty(); });
    if (null_mx)
      return done(failed(NextHopStatus::bounce, "5.1.10",
                         "domain " + name + " accepts no mail (null MX, RFC 7505)"));
    resolve_mx_hosts(resolver, mx.records, port, seed, std::move(done));
  });
}

void resolve_host(Resolver& resolver, const std::string& host, std::uint16_t port,
                  std::function<void(NextHopResult)> done) {
  const auto address = host.starts_with('[') ? parse_address_literal(host) : IpAddress::parse(host);
  if (address) return done(literal_hop(*address, port));
  if (host.starts_with('['))
    return done(failed(NextHopStatus::bounce, "5.4.4", "invalid address literal: " + host));
  const std::string name = normalize_name(host);
  resolver.addresses(name, [name, port, done = std::move(done)](const AddressAnswer& answer) {
    if (answer.status == Status::temporary) return done(deferred(answer.error));
    if (answer.status != Status::ok)
      return done(
          failed(NextHopStatus::bounce, "5.4.4", "next hop has no address: " + answer.error));
    NextHopResult result;
    result.status = NextHopStatus::ok;
    add_hops(result, name, answer, port, 0);
    done(std::move(result));
  });
}

}  // namespace relayq::dns
