// libFuzzer target: the header readers of policy/ (header_fields, from_domains,
// remove_authentication_results, dkim_key_names) on the input as a stored message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "policy/dkim.hpp"
#include "policy/message_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace relayq;
  const std::string message(reinterpret_cast<const char*>(data), size);
  const std::string_view whole(message);
  std::size_t previous_end = 0;
  for (const auto& field : policy::header_fields(message)) {
    if (field.offset < previous_end || field.offset + field.length > message.size())
      fuzz::fail("header fields overlap or run past the message");
    if (whole.substr(field.offset, field.length).substr(0, field.name.size()) != field.name)
      fuzz::fail("a field does not start with its name");
    previous_end = field.offset + field.length;
  }
  (void)policy::from_domains(message);
  std::string cleaned(message);
  const std::size_t removed = policy::remove_authentication_results(cleaned, "mx.fuzz.test");
  if (removed == 0 && cleaned != message) fuzz::fail("nothing removed but the message changed");
  if (cleaned.size() > message.size()) fuzz::fail("removing fields made the message longer");
  if (policy::remove_authentication_results(cleaned, "mx.fuzz.test") != 0)
    fuzz::fail("a forged Authentication-Results survived its removal");
  if (policy::dkim_key_names(message).size() > policy::kMaxDkimSignatures)
    fuzz::fail("more DKIM key names than signatures read");
  return 0;
}
