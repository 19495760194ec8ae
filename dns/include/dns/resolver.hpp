// Asynchronous DNS on c-ares, driven by a libuv loop: MX, A/AAAA, TXT and PTR lookups with a
// TTL-honouring cache shared by every loop.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dns/ip_address.hpp"

namespace relayq::dns {

// The outcome classes that decide a message's fate: nxdomain and nodata are permanent facts
// about the name, temporary covers SERVFAIL, REFUSED, timeouts and network errors.
enum class Status { ok, nxdomain, nodata, temporary };

std::string_view to_string(Status status);

struct MxRecord {
  std::uint16_t preference = 0;
  std::string host;  // lower-case, no trailing dot; "" for a null MX ("." in the zone)
};

struct MxAnswer {
  Status status = Status::temporary;
  std::vector<MxRecord> records;  // as received (not sorted)
  std::string error;              // for logs and bounce texts when status != ok
};

struct AddressAnswer {
  Status status = Status::temporary;
  std::vector<IpAddress> addresses;  // AAAA first, then A (RFC 6724 prefers IPv6)
  std::string error;
};

struct TextAnswer {
  Status status = Status::temporary;
  std::vector<std::string> records;  // each TXT record's strings concatenated
  std::string error;
};

struct NameAnswer {
  Status status = Status::temporary;
  std::vector<std::string> names;  // PTR targets, lower-case, no trailing dot
  std::string error;
};

struct ResolverOptions {
  std::vector<std::string> servers;  // "ip:port" ("[v6]:port"); empty = /etc/resolv.conf
  // The first try's timeout; c-ares doubles it for each later round over the servers, so one
  // server with tries = 2 gives up after about 3 x timeout.
  std::chrono::milliseconds timeout{5000};
  int tries = 2;
  std::chrono::seconds max_ttl{86400};         // positive answers: their TTL, at most this
  std::chrono::seconds negative_ttl_cap{300};  // NXDOMAIN/NODATA are cached at most this long
  std::chrono::seconds temporary_ttl{5};       // failures are cached briefly, to not hammer
};

// A cache of answers keyed by (type, name), shared between loops (internally locked). When
// full, expired entries are dropped, and if none had expired, all of them.
class Cache;
std::shared_ptr<Cache> make_cache(std::size_t max_entries = 100000);

// One resolver per loop thread; every method must be called on that loop's thread, and every
// callback runs there (possibly synchronously, from the cache). Callbacks may start lookups or
// call shutdown(), but must not destroy the Resolver.
class Resolver {
 public:
  // Throws std::invalid_argument when options.servers cannot be used, std::runtime_error when
  // c-ares cannot start.
  Resolver(uv_loop_t* loop, const ResolverOptions& options, std::shared_ptr<Cache> cache);
  ~Resolver();  // shutdown(), then the loop must run once more to free the libuv handles
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void mx(const std::string& domain, std::function<void(const MxAnswer&)> done);
  // A and AAAA together; ok if either has addresses.
  void addresses(const std::string& host, std::function<void(const AddressAnswer&)> done);
  // One family only: SPF asks for the client's family alone, and counts each empty answer.
  void a(const std::string& host, std::function<void(const AddressAnswer&)> done);
  void aaaa(const std::string& host, std::function<void(const AddressAnswer&)> done);
  void txt(const std::string& name, std::function<void(const TextAnswer&)> done);
  void ptr(const std::string& ip, std::function<void(const NameAnswer&)> done);

  // Closes the c-ares channel and its libuv handles; pending callbacks get Status::temporary,
  // and so do lookups started afterwards. Run the loop afterwards so the handles close.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::dns
