// The PROXY protocol header, as haproxy's proxy-protocol.txt specifies it: version 1 is one
// text line of at most 107 bytes, version 2 a 16-byte binary preamble and its addresses. Only
// TCP over IPv4 and IPv6 is taken; anything else is invalid, and the connection is closed.
#include "mta/inbound/proxy_header.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace relayq::mta {

namespace {

constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::size_t kV1MaxLine = 107;  // CRLF included

ProxyParse invalid(std::string error) {
  return {ProxyParse::Status::invalid, 0, {}, std::move(error)};
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> words;
  while (!line.empty()) {
    const std::size_t space = line.find(' ');
    words.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  return words;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > 65535 ||
      (text.size() > 1 && text[0] == '0'))
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// "PROXY TCP4 src dst sport dport\r\n" or "PROXY UNKNOWN ...\r\n".
ProxyParse parse_v1(std::string_view input) {
  const std::size_t end = input.find("\r\n");
  if (end == std::string_view::npos) {
    if (input.size() >= kV1MaxLine) return invalid("v1 line longer than 107 bytes");
    return {};
  }
  if (end + 2 > kV1MaxLine) return invalid("v1 line longer than 107 bytes");
  const auto words = split_spaces(input.substr(0, end));
  ProxyParse parse{ProxyParse::Status::done, end + 2, {}, {}};
  if (words.size() >= 2 && words[1] == "UNKNOWN") return parse;
  if (words.size() != 6 || (words[1] != "TCP4" && words[1] != "TCP6"))
    return invalid("v1 line is not PROXY TCP4|TCP6 src dst sport dport");
  const auto source = dns::IpAddress::parse(words[2]);
  const auto destination = dns::IpAddress::parse(words[3]);
  const auto port = parse_port(words[4]);
  const bool v6 = words[1] == "TCP6";
  if (!source || !destination || !port || !parse_port(words[5]) || source->v6 != v6 ||
      destination->v6 != v6)
    return invalid("v1 addresses or ports do not parse");
  parse.header = {*source, *port};
  return parse;
}

ProxyParse parse_v2(std::string_view input) {
  if (input.size() < 16) return {};
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(input[i]); };
  if ((byte(12) >> 4) != 2) return invalid("v2 header with an unknown version");
  const unsigned command = byte(12) & 0x0F;
  const unsigned family = byte(13);
  const std::size_t length = (std::size_t{byte(14)} << 8) | byte(15);
  if (input.size() < 16 + length) return {};
  ProxyParse parse{ProxyParse::Status::done, 16 + length, {}, {}};
  if (command == 0) return parse;  // LOCAL: the balancer's own connection (a health check)
  if (command != 1) return invalid("v2 header with an unknown command");
  const std::string_view body = input.substr(16, length);
  const auto port_at = [&](std::size_t i) {
    return static_cast<std::uint16_t>((std::uint16_t{byte(16 + i)} << 8) | byte(17 + i));
  };
  if (family == 0x11 && body.size() >= 12) {  // TCP over IPv4
    parse.header = {dns::IpAddress::from_bytes(false, body.data()), port_at(8)};
    return parse;
  }
  if (family == 0x21 && body.size() >= 36) {  // TCP over IPv6
    parse.header = {dns::IpAddress::from_bytes(true, body.data()), port_at(32)};
    return parse;
  }
  return invalid("v2 header for something other than TCP over IPv4 or IPv6");
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view input) {
  // Decide by the first bytes as soon as they can tell, so that a client that is not a
  // balancer (it waits for our banner) is refused at once rather than timed out.
  const std::size_t known = std::min(input.size(), kV2Signature.size());
  if (input.substr(0, known) == kV2Signature.substr(0, known)) {
    return input.size() < kV2Signature.size() ? ProxyParse{} : parse_v2(input);
  }
  constexpr std::string_view kV1Start = "PROXY ";
  const std::size_t v1_known = std::min(input.size(), kV1Start.size());
  if (input.substr(0, v1_known) == kV1Start.substr(0, v1_known)) {
    return input.size() < kV1Start.size() ? ProxyParse{} : parse_v1(input);
  }
  return invalid("no PROXY protocol header");
}

}  // namespace relayq::mta
