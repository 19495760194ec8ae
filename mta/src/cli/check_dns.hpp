// `relayq check-dns`: whether this server's DNS is what a mail server needs (host name,
// A/AAAA, PTR with forward confirmation, MX of the local domains, SPF, DKIM, DMARC), asked
// through the resolver its config names. Main thread, on a libuv loop of its own.
#pragma once

#include <string>

namespace relayq::mta {

// Prints one line per check on stdout ("pass  mx example.com: ...", "FAIL  ...; publish: RECORD",
// "skip  ...") and returns the exit code: 0 when none failed, 1 when one did, 2 for a config
// that does not load or an `ip` that is not an IP address (said on stderr). `ip` is the public
// address ("" when not given: the PTR and SPF checks are skipped).
int check_dns(const std::string& config_path, const std::string& ip);

}  // namespace relayq::mta
