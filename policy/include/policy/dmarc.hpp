// DMARC (RFC 7489): the policy record, the organizational domain, and the evaluation of a
// message's author domain against SPF and DKIM results. evaluate_dmarc runs on the thread of its
// lookup (a loop thread in the daemon); the rest are pure and run on any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"

namespace relayq::policy {

// The words of RFC 7489 11.2 / RFC 8601 for "dmarc=" in Authentication-Results.
enum class DmarcResult { none, pass, fail, temperror, permerror };
std::string_view to_string(DmarcResult result);

enum class DmarcPolicy { none, quarantine, reject };
std::string_view to_string(DmarcPolicy policy);

// The tags of a DMARC record (RFC 7489 6.3) that decide a verdict or where reports go.
struct DmarcRecord {
  DmarcPolicy policy = DmarcPolicy::none;          // p=
  std::optional<DmarcPolicy> subdomain_policy;     // sp=; p= applies when absent
  bool strict_dkim = false;                        // adkim=s (default r, relaxed)
  bool strict_spf = false;                         // aspf=s
  int percent = 100;                               // pct=: the share of failing mail to treat
  std::vector<std::string> aggregate_report_uris;  // rua=, each with its "!size" if any
  std::vector<std::string> failure_report_uris;    // ruf=
};

// Whether a TXT record at _dmarc.<domain> is a DMARC record at all: it begins with the tag
// v=DMARC1 (RFC 7489 6.6.3 step 2; other TXT records there are ignored).
bool is_dmarc_record(std::string_view txt);

// A DMARC record's tags; nullopt when it gives no policy: v=DMARC1 not first, or p= missing or
// not a policy, or sp= not a policy, unless rua= holds a valid URI, in which case it reads as
// p=none (6.6.3 step 6). Other bad or unknown tags are ignored and defaults apply (6.3); of a
// repeated tag the first counts.
std::optional<DmarcRecord> parse_dmarc_record(std::string_view txt);

// The organizational domain (RFC 7489 3.2): the registrable domain under the longest public
// suffix, from libpsl with the system list (/usr/share/publicsuffix), falling back to libpsl's
// built-in one; the list is loaded once per process, and reading it is thread-safe. A public
// suffix (or a name under no suffix the list knows, like "localhost") is its own organizational
// domain. Takes and returns lower-case; a trailing dot is dropped.
std::string organizational_domain(std::string_view domain);

struct DmarcInput {
  // The one RFC 5322.From domain; empty when the message has not exactly one (no From:, several
  // From: fields, several addresses, an address without a domain). RFC 7489 6.6.1 leaves such
  // messages to local policy; evaluate_dmarc reports them as permerror, so that adding a second
  // From: cannot turn a domain's p=reject into a "none".
  std::string from_domain;
  std::string spf_domain;  // the domain SPF checked (MAIL FROM's, or HELO's for <>)
  bool spf_pass = false;
  std::vector<std::string> dkim_pass_domains;  // d= of each passing DKIM signature
};

struct DmarcVerdict {
  DmarcResult result = DmarcResult::none;
  std::string from_domain;                 // header.from for Authentication-Results
  DmarcPolicy policy = DmarcPolicy::none;  // the published p= (or sp= for a subdomain)
  int percent = 100;                       // pct=: apply `policy` to this share of failures
  std::string problem;  // for logs, why it is not a pass: "no record", "invalid record", ...
};

// The TXT lookup DMARC needs, asynchronous (the daemon's is its c-ares resolver; tests use a
// map). The callback is called exactly once, possibly synchronously.
using DmarcTxtLookup =
    std::function<void(const std::string& name, std::function<void(const dns::TextAnswer&)> done)>;

// RFC 7489 6.6.3: the record at _dmarc.<from domain>, else at _dmarc.<organizational domain>
// (several records at the first name: no policy, result none). Identifier alignment (3.1):
// relaxed means the same organizational domain, strict the same domain, per aspf= and adkim=.
// pass when SPF passed for an aligned domain or any passing DKIM signature is aligned, fail
// otherwise; pct= changes what is done with a failure, not the result. A temporary DNS failure
// gives temperror, an invalid record permerror (no policy). `done` is called exactly once,
// possibly before evaluate_dmarc returns. `lookup` is copied: it may be a temporary.
void evaluate_dmarc(const DmarcInput& input, const DmarcTxtLookup& lookup,
                    std::function<void(DmarcVerdict)> done);

}  // namespace relayq::policy
