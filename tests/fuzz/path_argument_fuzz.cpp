// libFuzzer target: parse_path_argument on the input as a MAIL ("FROM", null path allowed) and
// a RCPT ("TO", no null path) argument, checking that what it returns is consistent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "mta/smtp/path_argument.hpp"

namespace {

using namespace relayq;

bool inside(std::string_view view, std::string_view whole) {
  return view.empty() ||
         (view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size());
}

void check(std::string_view argument, std::string_view keyword, bool allow_null) {
  const auto parsed = mta::parse_path_argument(argument, keyword, allow_null);
  if (parsed.status != mta::PathStatus::ok) return;
  if (parsed.mailbox.empty()) {
    if (!allow_null) fuzz::fail("a null path accepted where it is not allowed");
  } else if (parsed.domain.empty() || parsed.mailbox.find('@') == std::string::npos) {
    fuzz::fail("a mailbox accepted without a domain");
  }
  for (const auto& param : parsed.params) {
    if (param.keyword.empty()) fuzz::fail("an ESMTP parameter without a keyword");
    if (!inside(param.keyword, argument) || !inside(param.value, argument))
      fuzz::fail("an ESMTP parameter view outside the argument");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string argument(reinterpret_cast<const char*>(data), size);
  check(argument, "FROM", true);
  check(argument, "TO", false);
  return 0;
}
