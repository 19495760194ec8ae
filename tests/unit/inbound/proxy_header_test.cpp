// Unit tests of the PROXY protocol header parser: versions 1 and 2, headers cut anywhere, and
// what is refused.
#include <catch2/catch.hpp>

#include <string>

#include "mta/inbound/proxy_header.hpp"

namespace relayq::mta {
namespace {

using Status = ProxyParse::Status;

std::string v2(unsigned command, unsigned family, std::string addresses) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += static_cast<char>(0x20 | command);
  header += static_cast<char>(family);
  header += static_cast<char>(addresses.size() >> 8);
  header += static_cast<char>(addresses.size() & 0xFF);
  return header + addresses;
}

std::string v2_ipv4(std::string tlvs = "") {
  // 192.0.2.7:40001 -> 198.51.100.1:25, then any TLVs.
  return v2(1, 0x11, std::string("\xC0\x00\x02\x07\xC6\x33\x64\x01\x9C\x41\x00\x19", 12) + tlvs);
}

TEST_CASE("PROXY v1 names the client", "[inbound][proxy]") {
  const std::string header = "PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\n";
  const ProxyParse parse = parse_proxy_header(header + "EHLO x\r\n");
  REQUIRE(parse.status == Status::done);
  CHECK(parse.consumed == header.size());
  CHECK(parse.header.source->to_string() == "192.0.2.7");
  CHECK(parse.header.source_port == 40001);

  const ProxyParse six = parse_proxy_header("PROXY TCP6 2001:db8::7 2001:db8::1 5 25\r\n");
  REQUIRE(six.status == Status::done);
  CHECK(six.header.source->v6);

  const ProxyParse unknown = parse_proxy_header("PROXY UNKNOWN\r\n");
  REQUIRE(unknown.status == Status::done);
  CHECK_FALSE(unknown.header.source);
}

TEST_CASE("PROXY v2 names the client, and LOCAL names none", "[inbound][proxy]") {
  const std::string header = v2_ipv4(
      "\x03\x00\x04"
      "abcd");  // a CRC32C TLV, ignored
  const ProxyParse parse = parse_proxy_header(header + "EHLO x\r\n");
  REQUIRE(parse.status == Status::done);
  CHECK(parse.consumed == header.size());
  CHECK(parse.header.source->to_string() == "192.0.2.7");
  CHECK(parse.header.source_port == 40001);

  std::string six_addresses(36, '\0');
  six_addresses[0] = '\x20';
  six_addresses[1] = '\x01';
  six_addresses[15] = '\x07';
  six_addresses[32] = '\x01';
  const ProxyParse six = parse_proxy_header(v2(1, 0x21, six_addresses));
  REQUIRE(six.status == Status::done);
  CHECK(six.header.source->to_string() == "2001::7");
  CHECK(six.header.source_port == 256);

  const ProxyParse local = parse_proxy_header(v2(0, 0x00, ""));
  REQUIRE(local.status == Status::done);
  CHECK_FALSE(local.header.source);
}

TEST_CASE("A PROXY header cut anywhere asks for more", "[inbound][proxy]") {
  for (const std::string& header :
       {std::string("PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\n"), v2_ipv4()}) {
    for (std::size_t cut = 0; cut < header.size(); ++cut) {
      INFO("cut at " << cut);
      CHECK(parse_proxy_header(header.substr(0, cut)).status == Status::need_more);
    }
    CHECK(parse_proxy_header(header).status == Status::done);
  }
}

TEST_CASE("What is not a PROXY header is refused at once", "[inbound][proxy]") {
  const char* bad[] = {
      "EHLO client.test\r\n",                              // a client talking SMTP
      "QUIT\r\n",                                          // as early as the first byte
      "PROXY TCP4 192.0.2.7 198.51.100.1 40001\r\n",       // a field missing
      "PROXY TCP4 2001:db8::7 198.51.100.1 40001 25\r\n",  // family and address disagree
      "PROXY TCP4 192.0.2.7 198.51.100.1 70000 25\r\n",    // port out of range
      "PROXY TCP4 192.0.2.7 198.51.100.1 040001 25\r\n",   // a leading zero
      "PROXY UDP4 192.0.2.7 198.51.100.1 40001 25\r\n",    // not TCP
  };
  for (const char* text : bad) {
    INFO(text);
    const ProxyParse parse = parse_proxy_header(text);
    CHECK(parse.status == Status::invalid);
    CHECK_FALSE(parse.error.empty());
  }
  CHECK(parse_proxy_header("PROXY TCP4 " + std::string(120, '1')).status == Status::invalid);
  CHECK(parse_proxy_header(v2(1, 0x31, std::string(216, '\0'))).status == Status::invalid);  // unix
  std::string version3 = v2_ipv4();
  version3[12] = '\x31';
  CHECK(parse_proxy_header(version3).status == Status::invalid);
}

}  // namespace
}  // namespace relayq::mta
