// The one door to libopendkim, private to policy/: <opendkim/dkim.h> is C (it uses _Bool) and
// only opendkim_library.cpp includes it. One library instance for the process, set up on first
// use; each call makes its own handle, so any number of worker threads may call at once.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/dkim.hpp"

namespace relayq::policy::opendkim {

struct Verdict {
  DkimResult result = DkimResult::none;
  std::string reason;
};

// A signature's key record, answered from records fetched beforehand: the TXT record, or the
// verdict the signature gets without one ("no key", a temporary failure, ...).
using KeyAnswer = std::variant<std::string, Verdict>;
using KeyLookup = std::function<KeyAnswer(std::string_view selector, std::string_view domain)>;

// The verdicts on the first `limit` DKIM-Signature fields among `fields`, in order, one each.
// `fields` are the header block's fields in order, each whole (name, ':', value with its folds)
// without the final CRLF; `body` is what follows the blank line. libopendkim asks `lookup` for
// the keys and never does DNS itself.
std::vector<Verdict> verify(const std::vector<std::string_view>& fields, std::string_view body,
                            std::size_t limit, const KeyLookup& lookup);

}  // namespace relayq::policy::opendkim
