// How a finished c-ares query becomes a cacheable Lookup: the status mapping that decides a
// message's fate, and the cache lifetime of each kind of answer.
#include "lookup.hpp"

#include <ares.h>

#include <algorithm>

#include "packet.hpp"

namespace relayq::dns {

std::string_view to_string(RecordType type) {
  switch (type) {
    case RecordType::a:
      return "A";
    case RecordType::soa:
      return "SOA";
    case RecordType::ptr:
      return "PTR";
    case RecordType::mx:
      return "MX";
    case RecordType::txt:
      return "TXT";
    case RecordType::aaaa:
      return "AAAA";
  }
  return "?";
}

std::string describe(const Question& question, std::string_view what) {
  std::string text = question.name.empty() ? std::string(".") : question.name;
  text += ' ';
  text += to_string(question.type);
  text += ": ";
  text += what;
  return text;
}

// c-ares 1.18 reports a SERVFAIL or REFUSED answer as ARES_ECONNREFUSED once it has tried
// every server, so that text must cover both.
std::string_view status_text(int ares_status) {
  switch (ares_status) {
    case ARES_ENOTFOUND:
      return "no such domain (NXDOMAIN)";
    case ARES_ENODATA:
      return "no records of this type (NODATA)";
    case ARES_EBADNAME:
      return "not a valid domain name";
    case ARES_ETIMEOUT:
      return "DNS servers did not answer in time";
    case ARES_ECONNREFUSED:
      return "no DNS server gave a usable answer (SERVFAIL, REFUSED or unreachable)";
    default:
      return ares_strerror(ares_status);
  }
}

ClassifiedLookup classify(const Question& question, int ares_status,
                          std::span<const unsigned char> packet, const ResolverOptions& options) {
  using std::chrono::seconds;
  ClassifiedLookup result;
  Lookup& lookup = result.lookup;
  const auto ttls = packet.empty() ? std::nullopt : read_ttls(packet);
  switch (ares_status) {
    case ARES_SUCCESS:
      if (!ttls || !ttls->answer) {
        lookup.error = describe(question, "malformed answer");
        result.ttl = options.temporary_ttl;
        return result;
      }
      lookup.status = Status::ok;
      lookup.packet.assign(packet.begin(), packet.end());
      result.ttl = std::min(seconds(*ttls->answer), options.max_ttl);
      return result;
    // A name that cannot even be encoded (an empty label, one over 63 octets) does not exist
    // either; retrying it would never help.
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
    case ARES_ENODATA:
      lookup.status = ares_status == ARES_ENODATA ? Status::nodata : Status::nxdomain;
      lookup.error = describe(question, status_text(ares_status));
      // RFC 2308: without an SOA a negative answer should not be cached; a short while keeps
      // a burst of deliveries from asking again all the same.
      result.ttl =
          std::min(ttls && ttls->negative ? seconds(*ttls->negative) : options.temporary_ttl,
                   options.negative_ttl_cap);
      return result;
    // Shutting down says nothing about the name.
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
      lookup.error = describe(question, status_text(ares_status));
      return result;
    default:
      lookup.error = describe(question, status_text(ares_status));
      result.ttl = options.temporary_ttl;
      return result;
  }
}

}  // namespace relayq::dns
