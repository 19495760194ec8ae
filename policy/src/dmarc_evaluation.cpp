// DMARC evaluation (RFC 7489 6.6): policy discovery over an asynchronous TXT lookup, then
// identifier alignment of the SPF and DKIM results with the author domain. Runs on the thread
// that calls evaluate_dmarc and on the one its lookup answers on (the same loop in the daemon).
#include "policy/dmarc.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "dns/domain_name.hpp"

namespace relayq::policy {
namespace {

std::string normalized(std::string_view domain) {
  std::string name = dns::lower_case(domain);
  if (name.ends_with('.')) name.pop_back();
  return name;
}

// Labels of 1 to 63 octets, 253 in all, no whitespace, '@' or brackets: what a TXT query can be
// made of. A domain literal ("[192.0.2.1]") has no DMARC record to look up.
bool is_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (static_cast<unsigned char>(c) <= ' ' || c == '@' || c == '[' || c == ']' ||
               c == '\x7f' || ++label > 63) {
      return false;
    }
  }
  return label > 0;
}

// One evaluation in flight: what the callbacks of its one or two lookups need.
struct Evaluation {
  DmarcInput input;  // from_domain normalized
  std::string organizational;
  DmarcTxtLookup lookup;  // a copy: the second lookup starts after evaluate_dmarc returned
  std::function<void(DmarcVerdict)> done;
  DmarcVerdict verdict;

  void finish(DmarcResult result, std::string problem) {
    verdict.result = result;
    verdict.problem = std::move(problem);
    done(std::move(verdict));
  }
};

// RFC 7489 3.1: strict means the same domain, relaxed the same organizational domain.
bool aligned(std::string_view domain, const Evaluation& evaluation, bool strict) {
  const std::string name = normalized(domain);
  if (name.empty()) return false;
  return strict ? name == evaluation.input.from_domain
                : organizational_domain(name) == evaluation.organizational;
}

void apply(Evaluation& evaluation, const DmarcRecord& record, bool at_organizational_domain) {
  evaluation.verdict.policy = at_organizational_domain && record.subdomain_policy
                                  ? *record.subdomain_policy
                                  : record.policy;
  evaluation.verdict.percent = record.percent;
  const DmarcInput& input = evaluation.input;
  const bool spf = input.spf_pass && aligned(input.spf_domain, evaluation, record.strict_spf);
  const bool dkim = std::any_of(
      input.dkim_pass_domains.begin(), input.dkim_pass_domains.end(),
      [&](const std::string& domain) { return aligned(domain, evaluation, record.strict_dkim); });
  if (spf || dkim) {
    evaluation.finish(DmarcResult::pass, "");
  } else {
    evaluation.finish(DmarcResult::fail, "no aligned SPF or DKIM pass");
  }
}

void discover(const std::shared_ptr<Evaluation>& evaluation, bool at_organizational_domain);

// 6.6.3 steps 2 to 6 on the answer for one name.
void on_answer(const std::shared_ptr<Evaluation>& evaluation, bool at_organizational_domain,
               const dns::TextAnswer& answer) {
  if (answer.status == dns::Status::temporary) {
    evaluation->finish(DmarcResult::temperror, "DNS: " + answer.error);
    return;
  }
  std::vector<std::string_view> records;
  if (answer.status == dns::Status::ok) {
    for (const auto& txt : answer.records)
      if (is_dmarc_record(txt)) records.push_back(txt);
  }
  if (records.empty()) {
    if (!at_organizational_domain && evaluation->organizational != evaluation->input.from_domain) {
      discover(evaluation, true);
    } else {
      evaluation->finish(DmarcResult::none, "no record");
    }
    return;
  }
  // Several records end discovery: no fallback to the organizational domain either.
  if (records.size() > 1) {
    evaluation->finish(DmarcResult::none, "several records");
    return;
  }
  const auto record = parse_dmarc_record(records.front());
  if (!record) {
    evaluation->finish(DmarcResult::permerror, "invalid record");
    return;
  }
  apply(*evaluation, *record, at_organizational_domain);
}

void discover(const std::shared_ptr<Evaluation>& evaluation, bool at_organizational_domain) {
  const std::string& domain =
      at_organizational_domain ? evaluation->organizational : evaluation->input.from_domain;
  evaluation->lookup("_dmarc." + domain,
                     [evaluation, at_organizational_domain](const dns::TextAnswer& answer) {
                       on_answer(evaluation, at_organizational_domain, answer);
                     });
}

}  // namespace

std::string_view to_string(DmarcResult result) {
  switch (result) {
    case DmarcResult::none:
      return "none";
    case DmarcResult::pass:
      return "pass";
    case DmarcResult::fail:
      return "fail";
    case DmarcResult::temperror:
      return "temperror";
    case DmarcResult::permerror:
      return "permerror";
  }
  return "none";
}

void evaluate_dmarc(const DmarcInput& input, const DmarcTxtLookup& lookup,
                    std::function<void(DmarcVerdict)> done) {
  auto evaluation =
      std::make_shared<Evaluation>(Evaluation{input, {}, lookup, std::move(done), {}});
  evaluation->input.from_domain = normalized(input.from_domain);
  evaluation->verdict.from_domain = evaluation->input.from_domain;
  if (evaluation->input.from_domain.empty()) {
    evaluation->finish(DmarcResult::permerror, "not exactly one From domain");
    return;
  }
  if (!is_domain_name(evaluation->input.from_domain)) {
    evaluation->finish(DmarcResult::permerror, "From domain is not a domain name");
    return;
  }
  evaluation->organizational = organizational_domain(evaluation->input.from_domain);
  discover(evaluation, false);
}

}  // namespace relayq::policy
