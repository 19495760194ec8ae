// DKIM verification of a stored message: which key records its signatures need, then their
// results from libopendkim (opendkim_library) with the records the daemon fetched beforehand.
// Any thread (worker pool); no DNS here.
#include "policy/dkim.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "dkim_tags.hpp"
#include "dns/domain_name.hpp"
#include "opendkim_library.hpp"
#include "policy/message_headers.hpp"

namespace relayq::policy {
namespace {

// The tags of the first kMaxDkimSignatures DKIM-Signature fields (nullopt: not a tag-list).
std::vector<std::optional<DkimTags>> signatures_of(const std::vector<HeaderField>& fields) {
  std::vector<std::optional<DkimTags>> signatures;
  for (const auto& field : fields) {
    if (signatures.size() == kMaxDkimSignatures) break;
    if (dns::lower_case(field.name) == "dkim-signature")
      signatures.push_back(parse_dkim_tags(field.value));
  }
  return signatures;
}

// RFC 8301 3.1: rsa-sha1 signatures are not to be verified, so their keys are not worth fetching.
bool may_verify(const DkimTags& tags) {
  return tags.algorithm != "rsa-sha1";
}

// A field whole as libopendkim reads it: name to the end of the value, without the final CRLF.
std::string_view text_of(std::string_view message, const HeaderField& field) {
  std::string_view text = message.substr(field.offset, field.length);
  if (text.ends_with('\n')) text.remove_suffix(1);
  if (text.ends_with('\r')) text.remove_suffix(1);
  return text;
}

// What follows the header block's empty line, read line by line as header_fields reads it; ""
// when there is none.
std::string_view body_of(std::string_view message) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t newline = message.find('\n', pos);
    if (newline == std::string_view::npos) break;
    const std::size_t length = newline - pos;
    if (length == 0 || (length == 1 && message[pos] == '\r')) return message.substr(newline + 1);
    pos = newline + 1;
  }
  return {};
}

// What the fetched TXT answer for a signature's key gives: the record, or the verdict without one.
opendkim::KeyAnswer answer_from(const DkimKeyRecords& keys, std::string_view selector,
                                std::string_view domain) {
  const auto found = keys.find(dkim_key_record_name(selector, domain));
  if (found == keys.end()) return opendkim::Verdict{DkimResult::temperror, "key not fetched"};
  const dns::TextAnswer& answer = found->second;
  switch (answer.status) {
    case dns::Status::ok:
      if (answer.records.size() == 1) return answer.records.front();
      // RFC 6376 3.6.2.2 leaves several records undefined; libopendkim's own lookup refuses them.
      if (answer.records.size() > 1)
        return opendkim::Verdict{DkimResult::permerror, "multiple key records"};
      return opendkim::Verdict{DkimResult::permerror, "no key"};
    case dns::Status::nxdomain:
    case dns::Status::nodata:
      return opendkim::Verdict{DkimResult::permerror, "no key"};
    case dns::Status::temporary:
      break;
  }
  return opendkim::Verdict{DkimResult::temperror, "key lookup failed: " + answer.error};
}

}  // namespace

std::string_view to_string(DkimResult result) {
  switch (result) {
    case DkimResult::none:
      return "none";
    case DkimResult::pass:
      return "pass";
    case DkimResult::fail:
      return "fail";
    case DkimResult::neutral:
      return "neutral";
    case DkimResult::policy:
      return "policy";
    case DkimResult::temperror:
      return "temperror";
    case DkimResult::permerror:
      return "permerror";
  }
  return "none";
}

std::vector<std::string> dkim_key_names(std::string_view message) {
  std::vector<std::string> names;
  for (const auto& tags : signatures_of(header_fields(message))) {
    if (!tags || tags->domain.empty() || tags->selector.empty() || !may_verify(*tags)) continue;
    std::string name = dkim_key_record_name(tags->selector, tags->domain);
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
  }
  return names;
}

std::vector<DkimSignatureResult> dkim_verify(std::string_view message, const DkimKeyRecords& keys) {
  const auto fields = header_fields(message);
  const auto signatures = signatures_of(fields);
  if (signatures.empty()) return {};

  std::vector<std::string_view> texts;
  texts.reserve(fields.size());
  for (const auto& field : fields) texts.push_back(text_of(message, field));
  const auto verdicts = opendkim::verify(texts, body_of(message), kMaxDkimSignatures,
                                         [&](std::string_view selector, std::string_view domain) {
                                           return answer_from(keys, selector, domain);
                                         });

  std::vector<DkimSignatureResult> results;
  results.reserve(signatures.size());
  for (std::size_t i = 0; i < signatures.size(); ++i) {
    DkimSignatureResult result;
    opendkim::Verdict verdict = verdicts.at(i);
    if (const auto& tags = signatures[i]) {
      result.domain = tags->domain;
      result.selector = tags->selector;
      result.algorithm = tags->algorithm;
      result.b_prefix = tags->signature.substr(0, 8);
      if (!may_verify(*tags)) verdict = {DkimResult::policy, "rsa-sha1 is not accepted (RFC 8301)"};
    } else {
      verdict = {DkimResult::neutral, "malformed tag list"};
    }
    result.result = verdict.result;
    result.reason = std::move(verdict.reason);
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace relayq::policy
