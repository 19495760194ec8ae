// The DNS records a mail server publishes, as the zone file lines that `relayq check-dns` and
// `relayq dkim-record` print for an operator to add, and the test for a host name that can
// carry them. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"

namespace relayq::mta {

// A name a mail server can go by in DNS: two labels or more, none empty, not an IP address,
// and not localhost or a name under it (RFC 6761 6.3), which every resolver keeps to itself.
bool is_fully_qualified(std::string_view host);

// Each record is one zone file line with absolute names (a trailing dot). Names are given as
// relayq keeps them: lower-case, without a trailing dot.

// "example.com. IN MX 10 mail.example.com."
std::string mx_record(std::string_view domain, std::string_view host);
// "mail.example.com. IN A 203.0.113.5" (AAAA for IPv6); without an address, a placeholder for
// this server's public one.
std::string address_record(std::string_view host, const std::optional<dns::IpAddress>& address);
// "5.113.0.203.in-addr.arpa. IN PTR mail.example.com." (the nibble form for IPv6).
std::string ptr_record(const dns::IpAddress& address, std::string_view host);
// The SPF mechanism that authorizes one address: "ip4:203.0.113.5" or "ip6:2001:db8::5".
std::string spf_mechanism(const dns::IpAddress& address);
// example.com. IN TXT "v=spf1 ip4:203.0.113.5 -all": only that address may send its mail.
std::string spf_record(std::string_view domain, const dns::IpAddress& address);
// s1._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=..." "..." ): `record` in strings of
// at most 255 bytes (RFC 1035 3.3.14), which resolvers join again.
std::string dkim_record(std::string_view selector, std::string_view domain,
                        std::string_view record);
// _dmarc.example.com. IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@example.com": a first
// policy that changes no receiver's verdict and has the aggregate reports sent to postmaster.
std::string dmarc_record(std::string_view domain);

}  // namespace relayq::mta
