// The organizational domain of RFC 7489 3.2, from the public suffix list through libpsl. The
// list is loaded on first use (a function-local static: once, thread-safe); any thread after.
#include "policy/dmarc.hpp"

#include <libpsl.h>

#include <memory>

#include "dns/domain_name.hpp"

namespace relayq::policy {
namespace {

struct PslFree {
  void operator()(psl_ctx_t* context) const { psl_free(context); }
};

// psl_latest(NULL) reads the list libpsl was built to find (Debian's: the publicsuffix
// package's /usr/share/publicsuffix), or its built-in copy when that one is newer. When the
// file cannot be read, the built-in list still gives answers.
const psl_ctx_t* public_suffix_list() {
  static const std::unique_ptr<psl_ctx_t, PslFree> latest(psl_latest(nullptr));
  return latest ? latest.get() : psl_builtin();
}

}  // namespace

std::string organizational_domain(std::string_view domain) {
  std::string name = dns::lower_case(domain);
  if (name.ends_with('.')) name.pop_back();
  if (name.empty()) return name;
  // NULL for a public suffix itself (and when no list could be loaded at all).
  const char* registrable = psl_registrable_domain(public_suffix_list(), name.c_str());
  return registrable != nullptr ? std::string(registrable) : name;
}

}  // namespace relayq::policy
