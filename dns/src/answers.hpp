// Typed answers from cached lookups, through c-ares' parsers.
#pragma once

#include "dns/resolver.hpp"
#include "lookup.hpp"
#include "names.hpp"

namespace relayq::dns {

MxAnswer parse_mx(const Question& question, const Lookup& lookup);
TextAnswer parse_txt(const Question& question, const Lookup& lookup);
NameAnswer parse_ptr(const Question& question, const Lookup& lookup, const IpAddress& address);
// One family's addresses (the question's type, A or AAAA).
AddressAnswer parse_family(const Question& question, const Lookup& lookup);
// AAAA first, then A; ok if either family has an address.
AddressAnswer parse_addresses(const Question& v6_question, const Lookup& v6,
                              const Question& v4_question, const Lookup& v4);

}  // namespace relayq::dns
