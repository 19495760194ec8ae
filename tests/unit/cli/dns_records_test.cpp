// What `relayq check-dns` and `relayq dkim-record` tell an operator to publish, as zone file
// lines, and which server names are fully qualified.
#include <catch2/catch.hpp>

#include <string>

#include "mta/cli/dns_records.hpp"

namespace relayq::mta {
namespace {

dns::IpAddress ip(const char* text) {
  const auto address = dns::IpAddress::parse(text);
  REQUIRE(address);
  return *address;
}

}  // namespace

TEST_CASE("Fully qualified host names", "[cli][check_dns]") {
  for (const char* name : {"mail.example.com", "mx1.mail.example.com", "mail.example.com.", "a.b",
                           "xn--bcher-kva.example"}) {
    INFO(name);
    CHECK(is_fully_qualified(name));
  }
  for (const char* name :
       {"", "localhost", "localhost.", "vm", "mail", "foo.localhost", "localhost.localdomain",
        ".example.com", "mail..example.com", ".", "203.0.113.5", "2001:db8::5"}) {
    INFO(name);
    CHECK_FALSE(is_fully_qualified(name));
  }
}

TEST_CASE("Records to publish are zone file lines", "[cli][check_dns]") {
  CHECK(mx_record("example.test", "mail.example.test") ==
        "example.test. IN MX 10 mail.example.test.");
  CHECK(address_record("mail.example.test", ip("203.0.113.5")) ==
        "mail.example.test. IN A 203.0.113.5");
  CHECK(address_record("mail.example.test", ip("2001:DB8::5")) ==
        "mail.example.test. IN AAAA 2001:db8::5");
  CHECK(address_record("mail.example.test", std::nullopt) ==
        "mail.example.test. IN A <this server's public address> (AAAA for IPv6)");
  CHECK(ptr_record(ip("203.0.113.5"), "mail.example.test") ==
        "5.113.0.203.in-addr.arpa. IN PTR mail.example.test.");
  CHECK(ptr_record(ip("2001:db8::5"), "mail.example.test") ==
        "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. IN PTR "
        "mail.example.test.");
  CHECK(spf_mechanism(ip("203.0.113.5")) == "ip4:203.0.113.5");
  CHECK(spf_mechanism(ip("2001:db8::5")) == "ip6:2001:db8::5");
  CHECK(spf_record("example.test", ip("203.0.113.5")) ==
        "example.test. IN TXT \"v=spf1 ip4:203.0.113.5 -all\"");
  CHECK(dmarc_record("example.test") ==
        "_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@example.test\"");
}

TEST_CASE("DKIM records are split into strings of 255 bytes", "[cli][check_dns]") {
  CHECK(dkim_record("s1", "example.test", "v=DKIM1; k=ed25519; p=abc") ==
        "s1._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p=abc\" )");
  const std::string record = "v=DKIM1; k=rsa; p=" + std::string(400, 'A');
  CHECK(dkim_record("s1", "example.test", record) == "s1._domainkey.example.test. IN TXT ( \"" +
                                                         record.substr(0, 255) + "\" \"" +
                                                         record.substr(255) + "\" )");
  CHECK(dkim_record("s1", "example.test", std::string(510, 'B')) ==
        "s1._domainkey.example.test. IN TXT ( \"" + std::string(255, 'B') + "\" \"" +
            std::string(255, 'B') + "\" )");
}

}  // namespace relayq::mta
