// One query's outcome as the cache keeps it, and how a finished c-ares query becomes one.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

namespace relayq::dns {

// The record types relayq asks for (RFC 1035, RFC 3596).
enum class RecordType : std::uint16_t { a = 1, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28 };

std::string_view to_string(RecordType type);

// The cache key: a type and a normalized name (lower-case, no trailing dot).
struct Question {
  RecordType type = RecordType::a;
  std::string name;
  auto operator<=>(const Question&) const = default;
};

// "example.test MX: what", the prefix every error text carries so logs and DSNs name the query.
std::string describe(const Question& question, std::string_view what);

// What an ARES_* status means, worded for DSNs and logs.
std::string_view status_text(int ares_status);

struct Lookup {
  Status status = Status::temporary;
  std::string error;                  // empty when ok
  std::vector<unsigned char> packet;  // the raw answer when ok, parsed per type on each use
};

struct ClassifiedLookup {
  Lookup lookup;
  std::chrono::seconds ttl{0};  // how long the cache may keep it; 0 = not at all
};

// Maps a c-ares status and answer to a Lookup and its cache lifetime: positive answers live for
// their smallest TTL (at most options.max_ttl), negative ones for the SOA's negative TTL
// (RFC 2308) capped by options.negative_ttl_cap, failures for options.temporary_ttl.
ClassifiedLookup classify(const Question& question, int ares_status,
                          std::span<const unsigned char> packet, const ResolverOptions& options);

}  // namespace relayq::dns
