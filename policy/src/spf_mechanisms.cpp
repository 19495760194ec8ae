// The SPF mechanisms that need address lookups: a, mx, ptr and exists (RFC 7208 5.3 to 5.7),
// with the void-lookup and per-mechanism name limits of 4.6.4. On the evaluation's thread.
#include <algorithm>
#include <utility>

#include "spf_evaluation.hpp"
#include "spf_names.hpp"

namespace relayq::policy::spf {
namespace {

bool is_void(dns::Status status) {
  return status == dns::Status::nxdomain || status == dns::Status::nodata;
}

// A void answer matches nothing, but too many of them end the check (4.6.4).
Match void_answer(Evaluation& evaluation, const std::string& name) {
  if (evaluation.count_void_lookup()) return Match::of(false);
  return Match::error_of(SpfResult::permerror, "more than " +
                                                   std::to_string(Evaluation::kMaxVoidLookups) +
                                                   " void lookups (the last for " + name + ")");
}

// 5: any DNS error other than "no such name" ends check_host() with temperror.
Match temporary(const std::string& error) {
  return Match::error_of(SpfResult::temperror, "DNS error: " + error);
}

bool any_in_network(const std::vector<dns::IpAddress>& addresses, const dns::IpAddress& client,
                    int prefix) {
  return std::any_of(addresses.begin(), addresses.end(), [&](const dns::IpAddress& address) {
    return in_network(client, address, prefix);
  });
}

// The client-family addresses of several names, asked at once; `done` gets the answers in
// the order of `names`.
void look_up_all(const std::shared_ptr<Evaluation>& evaluation,
                 const std::vector<std::string>& names,
                 std::function<void(std::vector<dns::AddressAnswer>)> done) {
  if (names.empty()) {
    done({});
    return;
  }
  struct Gathered {
    std::vector<dns::AddressAnswer> answers;
    std::size_t missing;
    std::function<void(std::vector<dns::AddressAnswer>)> done;
  };
  auto gathered = std::make_shared<Gathered>(
      Gathered{std::vector<dns::AddressAnswer>(names.size()), names.size(), std::move(done)});
  for (std::size_t i = 0; i < names.size(); ++i) {
    evaluation->addresses(names[i], [gathered, i](const dns::AddressAnswer& answer) {
      gathered->answers[i] = answer;
      if (--gathered->missing == 0) gathered->done(std::move(gathered->answers));
    });
  }
}

}  // namespace

bool in_network(const dns::IpAddress& client, const dns::IpAddress& network, int prefix) {
  if (client.v6 != network.v6) return false;
  for (int i = 0; prefix > 0; ++i, prefix -= 8) {
    const int bits = std::min(prefix, 8);
    const auto mask = static_cast<std::uint8_t>(0xff00 >> bits);
    if ((client.bytes[i] & mask) != (network.bytes[i] & mask)) return false;
  }
  return true;
}

void match_a(std::shared_ptr<Evaluation> evaluation, const std::string& target, int prefix,
             std::function<void(Match)> done) {
  evaluation->addresses(target, [evaluation, target, prefix,
                                 done = std::move(done)](const dns::AddressAnswer& answer) {
    if (answer.status == dns::Status::temporary) return done(temporary(answer.error));
    if (is_void(answer.status)) return done(void_answer(*evaluation, target));
    done(Match::of(any_in_network(answer.addresses, evaluation->client(), prefix)));
  });
}

// 5.4: the addresses of each MX host; more than 10 hosts is a permerror (4.6.4), and no MX
// record matches nothing (no falling back to the target's own address).
void match_mx(std::shared_ptr<Evaluation> evaluation, const std::string& target, int prefix,
              std::function<void(Match)> done) {
  evaluation->mx(
      target, [evaluation, target, prefix, done = std::move(done)](const dns::MxAnswer& answer) {
        if (answer.status == dns::Status::temporary) return done(temporary(answer.error));
        if (is_void(answer.status)) return done(void_answer(*evaluation, target));
        std::vector<std::string> hosts;
        for (const auto& record : answer.records) {
          if (!record.host.empty()) hosts.push_back(record.host);  // a null MX names no host
        }
        if (hosts.size() > Evaluation::kMaxNames) {
          return done(Match::error_of(
              SpfResult::permerror,
              "more than " + std::to_string(Evaluation::kMaxNames) + " MX records for " + target));
        }
        look_up_all(evaluation, hosts,
                    [evaluation, prefix, done](std::vector<dns::AddressAnswer> answers) {
                      for (const auto& host : answers) {
                        if (host.status == dns::Status::temporary)
                          return done(temporary(host.error));
                        if (any_in_network(host.addresses, evaluation->client(), prefix)) {
                          return done(Match::of(true));
                        }
                      }
                      done(Match::of(false));
                    });
      });
}

// 5.5: a DNS error on the PTR lookup is no match rather than temperror.
void match_ptr(std::shared_ptr<Evaluation> evaluation, const std::string& target,
               std::function<void(Match)> done) {
  validated_names(
      evaluation, [target](const std::string& name) { return is_within(name, target); },
      [evaluation, done = std::move(done)](dns::Status status, std::vector<std::string> names) {
        if (is_void(status)) return done(void_answer(*evaluation, "the client's PTR"));
        done(Match::of(!names.empty()));
      });
}

// 5.7: an A lookup whatever the client's family.
void match_exists(std::shared_ptr<Evaluation> evaluation, const std::string& target,
                  std::function<void(Match)> done) {
  evaluation->a(target,
                [evaluation, target, done = std::move(done)](const dns::AddressAnswer& answer) {
                  if (answer.status == dns::Status::temporary) return done(temporary(answer.error));
                  if (is_void(answer.status)) return done(void_answer(*evaluation, target));
                  done(Match::of(!answer.addresses.empty()));
                });
}

void validated_names(std::shared_ptr<Evaluation> evaluation,
                     std::function<bool(const std::string&)> wanted,
                     std::function<void(dns::Status, std::vector<std::string>)> done) {
  evaluation->ptr([evaluation, wanted = std::move(wanted),
                   done = std::move(done)](const dns::NameAnswer& answer) {
    if (answer.status != dns::Status::ok) return done(answer.status, {});
    // 4.6.4: only the first 10 names count, in the order the answer gave them.
    std::vector<std::string> candidates;
    for (std::size_t i = 0; i < answer.names.size() && i < Evaluation::kMaxNames; ++i) {
      if (wanted(answer.names[i])) candidates.push_back(answer.names[i]);
    }
    look_up_all(evaluation, candidates,
                [evaluation, candidates, done](std::vector<dns::AddressAnswer> answers) {
                  std::vector<std::string> validated;
                  const auto& client = evaluation->client();
                  for (std::size_t i = 0; i < candidates.size(); ++i) {
                    if (any_in_network(answers[i].addresses, client, client.v6 ? 128 : 32)) {
                      validated.push_back(candidates[i]);
                    }
                  }
                  done(dns::Status::ok, std::move(validated));
                });
  });
}

}  // namespace relayq::policy::spf
