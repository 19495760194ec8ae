// libFuzzer target: parse_proxy_header on the input as the first bytes of a connection, whole
// and then growing a byte at a time (as reads arrive), checking that the verdicts agree.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_input.hpp"
#include "mta/inbound/proxy_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using relayq::mta::ProxyParse;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const ProxyParse whole = relayq::mta::parse_proxy_header(input);
  if (whole.status == ProxyParse::Status::done &&
      (whole.consumed == 0 || whole.consumed > input.size()))
    relayq::fuzz::fail("a header consumed more bytes than it was given, or none");
  if (size > 600) return 0;  // the prefixes below are quadratic
  // A prefix must not be refused when the whole input is accepted, nor accepted differently.
  for (std::size_t length = 0; length < size; ++length) {
    const ProxyParse part = relayq::mta::parse_proxy_header(input.substr(0, length));
    if (part.status == ProxyParse::Status::done) {
      if (part.consumed > length) relayq::fuzz::fail("a prefix consumed more than it was given");
      break;
    }
    if (part.status == ProxyParse::Status::invalid && whole.status == ProxyParse::Status::done)
      relayq::fuzz::fail("a prefix refused although the whole input is a valid header");
  }
  return 0;
}
