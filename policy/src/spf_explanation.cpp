// The explanation of a fail (RFC 7208 6.2), looked up once the result is known: any trouble
// on the way means no explanation rather than another result. On the evaluation's thread.
#include "spf_evaluation.hpp"
#include "spf_names.hpp"

namespace relayq::policy::spf {
namespace {

// Runs `then` after %{p} is resolved when `macro` uses it, at once otherwise.
void when_expandable(Evaluation& evaluation, const MacroString& macro, std::function<void()> then) {
  if (macro.uses('p')) {
    evaluation.resolve_validated_names(std::move(then));
  } else {
    then();
  }
}

}  // namespace

void explain(std::shared_ptr<Evaluation> evaluation, const Outcome& outcome,
             std::function<void(std::string)> done) {
  const MacroString spec = *outcome.explanation;
  const std::string domain = outcome.explanation_domain;
  when_expandable(*evaluation, spec, [evaluation, spec, domain, done = std::move(done)] {
    const auto name = query_name(expand(spec, evaluation->values_for(domain)));
    if (!name) return done({});
    // Not counted as a void lookup: the result is already decided.
    evaluation->txt(*name, [evaluation, domain, done](const dns::TextAnswer& answer) {
      if (answer.status != dns::Status::ok || answer.records.size() != 1) return done({});
      // Explanation text is ASCII macro text with spaces; anything else is ignored.
      auto text = parse_macro_string(answer.records.front(), MacroUse::explanation);
      if (!text) return done({});
      when_expandable(*evaluation, *text, [evaluation, text = *text, domain, done] {
        done(expand(text, evaluation->values_for(domain)));
      });
    });
  });
}

}  // namespace relayq::policy::spf
