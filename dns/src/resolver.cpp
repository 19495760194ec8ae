// The per-loop resolver: answers from the shared cache when it can, otherwise one c-ares query
// per (type, name) however many lookups wait for it, then typed answers for the callers.
#include "dns/resolver.hpp"

#include <map>
#include <utility>

#include "answers.hpp"
#include "cache.hpp"
#include "channel.hpp"
#include "names.hpp"

namespace relayq::dns {

std::string_view to_string(Status status) {
  switch (status) {
    case Status::ok:
      return "ok";
    case Status::nxdomain:
      return "nxdomain";
    case Status::nodata:
      return "nodata";
    case Status::temporary:
      return "temporary";
  }
  return "?";
}

struct Resolver::Impl {
  using Waiter = std::function<void(const std::shared_ptr<const Lookup>&)>;

  Impl(uv_loop_t* loop, const ResolverOptions& options, std::shared_ptr<Cache> cache)
      : options(options), cache(std::move(cache)), channel(loop, options) {}

  void lookup(const Question& question, Waiter done);
  void family(RecordType type, const std::string& host,
              std::function<void(const AddressAnswer&)> done);
  void finish(const Question& question, int ares_status, std::span<const unsigned char> packet);
  void shutdown();

  const ResolverOptions options;
  const std::shared_ptr<Cache> cache;
  std::map<Question, std::vector<Waiter>> in_flight;  // coalesces identical lookups
  bool shut_down = false;
  Channel channel;  // last, so it closes before the members its callbacks use
};

void Resolver::Impl::lookup(const Question& question, Waiter done) {
  if (shut_down || question.name.empty()) {
    Lookup refused;
    refused.status = shut_down ? Status::temporary : Status::nxdomain;
    refused.error = describe(question, shut_down ? "resolver is shut down" : "empty name");
    done(std::make_shared<const Lookup>(std::move(refused)));
    return;
  }
  if (auto cached = cache->find(question)) {
    done(cached);
    return;
  }
  auto [entry, first] = in_flight.try_emplace(question);
  entry->second.push_back(std::move(done));
  if (!first) return;
  channel.query(question, [this, question](int status, std::vector<unsigned char> packet) {
    finish(question, status, packet);
  });
}

void Resolver::Impl::family(RecordType type, const std::string& host,
                            std::function<void(const AddressAnswer&)> done) {
  Question question{type, normalize_name(host)};
  lookup(question, [question, done = std::move(done)](const auto& lookup) {
    done(parse_family(question, *lookup));
  });
}

void Resolver::Impl::finish(const Question& question, int ares_status,
                            std::span<const unsigned char> packet) {
  ClassifiedLookup classified = classify(question, ares_status, packet, options);
  auto lookup = std::make_shared<const Lookup>(std::move(classified.lookup));
  cache->store(question, lookup, classified.ttl);
  // Detach the waiters first: they may ask the same question again.
  auto waiters = in_flight.extract(question);
  for (auto& waiter : waiters.mapped()) waiter(lookup);
}

void Resolver::Impl::shutdown() {
  shut_down = true;
  channel.close();
}

Resolver::Resolver(uv_loop_t* loop, const ResolverOptions& options, std::shared_ptr<Cache> cache)
    : impl_(std::make_unique<Impl>(loop, options, std::move(cache))) {}

// Pending lookups fail while the Resolver is still whole: their callbacks may call it again.
Resolver::~Resolver() {
  impl_->shutdown();
}

void Resolver::shutdown() {
  impl_->shutdown();
}

void Resolver::mx(const std::string& domain, std::function<void(const MxAnswer&)> done) {
  Question question{RecordType::mx, normalize_name(domain)};
  impl_->lookup(question, [question, done = std::move(done)](const auto& lookup) {
    done(parse_mx(question, *lookup));
  });
}

void Resolver::addresses(const std::string& host, std::function<void(const AddressAnswer&)> done) {
  // Both families in parallel; the answer waits for the second to arrive.
  struct Pair {
    Question v6, v4;
    std::shared_ptr<const Lookup> v6_lookup, v4_lookup;
    std::function<void(const AddressAnswer&)> done;
    void complete() {
      if (v6_lookup && v4_lookup) done(parse_addresses(v6, *v6_lookup, v4, *v4_lookup));
    }
  };
  const std::string name = normalize_name(host);
  auto pair = std::make_shared<Pair>(
      Pair{{RecordType::aaaa, name}, {RecordType::a, name}, nullptr, nullptr, std::move(done)});
  impl_->lookup(pair->v6, [pair](const auto& lookup) {
    pair->v6_lookup = lookup;
    pair->complete();
  });
  impl_->lookup(pair->v4, [pair](const auto& lookup) {
    pair->v4_lookup = lookup;
    pair->complete();
  });
}

void Resolver::a(const std::string& host, std::function<void(const AddressAnswer&)> done) {
  impl_->family(RecordType::a, host, std::move(done));
}

void Resolver::aaaa(const std::string& host, std::function<void(const AddressAnswer&)> done) {
  impl_->family(RecordType::aaaa, host, std::move(done));
}

void Resolver::txt(const std::string& name, std::function<void(const TextAnswer&)> done) {
  Question question{RecordType::txt, normalize_name(name)};
  impl_->lookup(question, [question, done = std::move(done)](const auto& lookup) {
    done(parse_txt(question, *lookup));
  });
}

void Resolver::ptr(const std::string& ip, std::function<void(const NameAnswer&)> done) {
  const auto address = IpAddress::parse(ip);
  if (!address) {
    NameAnswer answer;
    answer.status = Status::nxdomain;
    answer.error = "not an IP address: " + ip;
    done(answer);
    return;
  }
  Question question{RecordType::ptr, reverse_name(*address)};
  impl_->lookup(question, [question, address = *address, done = std::move(done)](const auto& l) {
    done(parse_ptr(question, *l, address));
  });
}

}  // namespace relayq::dns
