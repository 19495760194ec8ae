// The records to publish, as zone file lines, and fully qualified host names.
#include "mta/cli/dns_records.hpp"

#include <fmt/core.h>

namespace relayq::mta {

bool is_fully_qualified(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.empty() || host.starts_with('.') || host.find("..") != std::string_view::npos ||
      host.find('.') == std::string_view::npos)
    return false;
  if (dns::IpAddress::parse(host)) return false;
  return host != "localhost.localdomain" && !host.ends_with(".localhost");
}

std::string mx_record(std::string_view domain, std::string_view host) {
  return fmt::format("{}. IN MX 10 {}.", domain, host);
}

std::string address_record(std::string_view host, const std::optional<dns::IpAddress>& address) {
  if (!address) return fmt::format("{}. IN A <this server's public address> (AAAA for IPv6)", host);
  return fmt::format("{}. IN {} {}", host, address->v6 ? "AAAA" : "A", address->to_string());
}

std::string ptr_record(const dns::IpAddress& address, std::string_view host) {
  return fmt::format("{}. IN PTR {}.", dns::reverse_name(address), host);
}

std::string spf_mechanism(const dns::IpAddress& address) {
  return fmt::format("{}:{}", address.v6 ? "ip6" : "ip4", address.to_string());
}

std::string spf_record(std::string_view domain, const dns::IpAddress& address) {
  return fmt::format("{}. IN TXT \"v=spf1 {} -all\"", domain, spf_mechanism(address));
}

std::string dkim_record(std::string_view selector, std::string_view domain,
                        std::string_view record) {
  constexpr std::size_t kMaxString = 255;
  std::string strings;
  for (std::size_t at = 0; at < record.size(); at += kMaxString) {
    if (!strings.empty()) strings += ' ';
    strings += '"';
    strings += record.substr(at, kMaxString);
    strings += '"';
  }
  return fmt::format("{}._domainkey.{}. IN TXT ( {} )", selector, domain, strings);
}

std::string dmarc_record(std::string_view domain) {
  return fmt::format("_dmarc.{}. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{}\"", domain,
                     domain);
}

}  // namespace relayq::mta
