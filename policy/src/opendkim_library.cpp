// libopendkim behind opendkim_library.hpp: the process's DKIM_LIB and its options, the callbacks
// that answer key lookups from prefetched records (so it never does DNS), one verification per
// call on its own handle, and what its signature errors mean in RFC 8601 words. Any
// thread (worker pool); the DKIM_LIB is only read after it is set up.
#include "opendkim_library.hpp"

// dkim.h declares _Bool (C99) parameters and returns; C++ spells that one-byte type bool.
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

namespace relayq::policy::opendkim {
namespace {

// libopendkim takes text as unsigned char*, some of it without const though it only reads or
// copies it.
unsigned char* bytes(const char* text) {
  return reinterpret_cast<unsigned char*>(const_cast<char*>(text));
}

struct HandleFree {
  void operator()(DKIM* dkim) const { dkim_free(dkim); }
};
using Handle = std::unique_ptr<DKIM, HandleFree>;

std::string error_of(DKIM* dkim, DKIM_STAT status) {
  const char* result = dkim_getresultstr(status);
  std::string text = result != nullptr ? result : "status " + std::to_string(status);
  const char* detail = dkim != nullptr ? dkim_geterror(dkim) : nullptr;
  if (detail != nullptr && *detail != '\0') text += std::string(": ") + detail;
  return text;
}

// One entry of libopendkim's signature list (header order; with DKIM_LIBFLAGS_BADSIGHANDLES a
// DKIM-Signature whose tags it could not read gets one too, so entries follow the fields).
struct Slot {
  std::size_t ordinal = 0;         // of the DKIM-Signature fields, 0 being the topmost
  std::optional<Verdict> verdict;  // decided before any crypto: unreadable tags, no key record
};

// One verification's state, reached from the callbacks through the handle's user context.
struct VerifyContext {
  const KeyLookup& lookup;
  std::size_t limit;
  std::vector<Slot> slots;
  // The signature list as the prescreen saw it: dkim_getsiglist() refuses to answer until the
  // header block is done, and the key lookups happen before that.
  std::vector<DKIM_SIGINFO*> sigs;
};

VerifyContext& context_of(DKIM* dkim) {
  return *static_cast<VerifyContext*>(dkim_get_user_context(dkim));
}

// Before any key is looked up: leave out the signatures past the limit and those already decided.
DKIM_CBSTAT prescreen(DKIM* dkim, DKIM_SIGINFO** sigs, int count) {
  VerifyContext& context = context_of(dkim);
  context.sigs.assign(sigs, sigs + count);
  for (int i = 0; i < count; ++i) {
    const auto index = static_cast<std::size_t>(i);
    if (index >= context.slots.size() || context.slots[index].ordinal >= context.limit ||
        context.slots[index].verdict)
      dkim_sig_ignore(sigs[i]);
  }
  return DKIM_CBSTAT_CONTINUE;
}

// The key lookup, answered by the caller from the records it fetched. Without a record the
// caller's verdict is kept and libopendkim hears "not found": TRYAGAIN would make it stop at this
// signature and leave the others unprocessed.
DKIM_CBSTAT lookup_key(DKIM* dkim, DKIM_SIGINFO* sig, unsigned char* buffer, size_t size) {
  VerifyContext& context = context_of(dkim);
  const auto index = static_cast<std::size_t>(
      std::find(context.sigs.begin(), context.sigs.end(), sig) - context.sigs.begin());
  KeyAnswer answer;
  try {
    answer = context.lookup(reinterpret_cast<const char*>(dkim_sig_getselector(sig)),
                            reinterpret_cast<const char*>(dkim_sig_getdomain(sig)));
  } catch (const std::exception& e) {  // an exception must not unwind through C frames
    answer = Verdict{DkimResult::temperror, e.what()};
  }
  if (const auto* record = std::get_if<std::string>(&answer)) {
    if (record->size() < size) {
      std::copy(record->c_str(), record->c_str() + record->size() + 1, buffer);
      return DKIM_CBSTAT_CONTINUE;
    }
    answer = Verdict{DkimResult::permerror, "key record too long"};
  }
  if (index < context.slots.size()) context.slots[index].verdict = std::get<Verdict>(answer);
  return DKIM_CBSTAT_NOTFOUND;
}

DKIM_LIB* make_library() {
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (lib == nullptr) throw std::runtime_error("dkim_init failed");
  unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
  const DKIM_STAT statuses[] = {
      dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags),
      dkim_set_prescreen(lib, prescreen),
      dkim_set_key_lookup(lib, lookup_key),
  };
  for (const DKIM_STAT status : statuses) {
    if (status != DKIM_STAT_OK) {
      dkim_close(lib);
      throw std::runtime_error("libopendkim setup: " + error_of(nullptr, status));
    }
  }
  return lib;
}

// Made once (thread-safe static initialization), then shared: handles only read it.
DKIM_LIB* library() {
  static DKIM_LIB* const lib = make_library();
  return lib;
}

// Whether libopendkim reads `field` as a DKIM-Signature: the name before the ':', trailing
// whitespace trimmed, is DKIM-Signature in any case.
bool is_signature_field(std::string_view field) {
  const std::size_t colon = field.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && std::string_view(" \t\r\n\v\f").find(name.back()) != name.npos)
    name.remove_suffix(1);
  constexpr std::string_view kName = "dkim-signature";
  return name.size() == kName.size() &&
         std::equal(name.begin(), name.end(), kName.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

// dkim_header() drops a field whose name holds a byte outside 32..126 (a tab before the ':')
// before reading any tags: such a DKIM-Signature gets no entry in the signature list.
bool gets_slot(std::string_view signature_field) {
  const std::string_view name = signature_field.substr(0, signature_field.find(':'));
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= 32 && c <= 126; });
}

// Failures of libopendkim itself rather than verdicts on the message.
bool is_failure(DKIM_STAT status) {
  return status == DKIM_STAT_NORESOURCE || status == DKIM_STAT_INTERNAL ||
         status == DKIM_STAT_INVALID || status == DKIM_STAT_CBREJECT ||
         status == DKIM_STAT_CBTRYAGAIN || status == DKIM_STAT_CBERROR ||
         status == DKIM_STAT_CBINVALID;
}

std::string reason_of(int error) {
  const char* text = dkim_sig_geterrorstr(error);
  return text != nullptr ? text : "signature error " + std::to_string(error);
}

// A processed signature in RFC 8601 words: its own tags wrong is neutral (2.7.1), its key record
// wrong is permerror, a key or time it may not use is policy. Key records that are missing or
// could not be fetched never get here: the lookup decided those.
Verdict verdict_of(DKIM_SIGINFO* sig) {
  if ((dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED) != 0) {
    if (dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) return {DkimResult::pass, ""};
    return {DkimResult::fail, "body hash mismatch"};
  }
  const int error = dkim_sig_geterror(sig);
  switch (error) {
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_TOOLARGE_L:
      return {DkimResult::fail, reason_of(error)};
    case DKIM_SIGERROR_KEYTOOSMALL:
    case DKIM_SIGERROR_EXPIRED:
    case DKIM_SIGERROR_FUTURE:
      return {DkimResult::policy, reason_of(error)};
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYREVOKED:
    case DKIM_SIGERROR_KEYDECODE:
      return {DkimResult::permerror, reason_of(error)};
    case DKIM_SIGERROR_UNKNOWN:  // processing stopped before this signature: worth a retry
    case DKIM_SIGERROR_OK:
      return {DkimResult::temperror, "not verified"};
    default:
      return {DkimResult::neutral, reason_of(error)};
  }
}

}  // namespace

std::vector<Verdict> verify(const std::vector<std::string_view>& fields, std::string_view body,
                            std::size_t limit, const KeyLookup& lookup) {
  const auto signature_fields =
      static_cast<std::size_t>(std::count_if(fields.begin(), fields.end(), is_signature_field));
  std::vector<Verdict> verdicts(std::min(signature_fields, limit));
  const auto failed = [&](DKIM* dkim, DKIM_STAT status) {
    for (auto& verdict : verdicts) verdict = {DkimResult::temperror, error_of(dkim, status)};
    return verdicts;
  };

  DKIM_STAT status = DKIM_STAT_OK;
  const Handle dkim(dkim_verify(library(), bytes("relayq"), nullptr, &status));
  if (!dkim) return failed(nullptr, status);
  VerifyContext context{lookup, limit, {}, {}};
  dkim_set_user_context(dkim.get(), &context);

  std::size_t ordinal = 0;
  for (const std::string_view field : fields) {
    status = dkim_header(dkim.get(), bytes(field.data()), field.size());
    if (is_failure(status)) return failed(dkim.get(), status);
    if (!is_signature_field(field)) continue;
    std::optional<Verdict> unread;
    if (status != DKIM_STAT_OK) unread = Verdict{DkimResult::neutral, error_of(dkim.get(), status)};
    if (gets_slot(field)) {
      context.slots.push_back({ordinal, std::move(unread)});
    } else if (ordinal < verdicts.size()) {
      verdicts[ordinal] = {DkimResult::neutral, "malformed field name"};
    }
    ++ordinal;
  }

  status = dkim_eoh(dkim.get());
  if (status == DKIM_STAT_OK && !body.empty())
    status = dkim_body(dkim.get(), bytes(body.data()), body.size());
  if (status == DKIM_STAT_OK) status = dkim_eom(dkim.get(), nullptr);
  if (is_failure(status)) return failed(dkim.get(), status);

  const std::size_t entries = std::min(context.slots.size(), context.sigs.size());
  for (std::size_t i = 0; i < entries; ++i) {
    const Slot& slot = context.slots[i];
    if (slot.ordinal < verdicts.size())
      verdicts[slot.ordinal] = slot.verdict ? *slot.verdict : verdict_of(context.sigs[i]);
  }
  return verdicts;
}

}  // namespace relayq::policy::opendkim
