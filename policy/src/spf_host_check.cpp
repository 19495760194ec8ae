// check_host() (RFC 7208 section 4): record selection, the directives in order, include and
// redirect, the limit on lookup terms. One HostCheck per call, kept alive by its pending
// callbacks; a nested call (include, redirect) hands its outcome back to its parent. On the
// evaluation's thread.
#include <utility>

#include "spf_evaluation.hpp"
#include "spf_names.hpp"

namespace relayq::policy::spf {
namespace {

// Every include and redirect counts against the 10 lookup terms, so that limit ends a loop
// first; this bound on nesting keeps the stack bounded even if that count were wrong.
constexpr int kMaxDepth = Evaluation::kMaxLookupTerms + 1;

class HostCheck : public std::enable_shared_from_this<HostCheck> {
 public:
  HostCheck(std::shared_ptr<Evaluation> evaluation, std::string domain, int depth,
            std::function<void(Outcome)> done)
      : evaluation_(std::move(evaluation)),
        domain_(std::move(domain)),
        depth_(depth),
        done_(std::move(done)) {}

  void start() {
    evaluation_->txt(domain_, [self = shared_from_this()](const dns::TextAnswer& answer) {
      self->select_record(answer);
    });
  }

 private:
  // 4.4 and 4.5: exactly one TXT record starting "v=spf1"; type SPF records are not asked for.
  void select_record(const dns::TextAnswer& answer) {
    if (answer.status == dns::Status::temporary) {
      return finish(SpfResult::temperror, "DNS error: " + answer.error);
    }
    const std::string* found = nullptr;
    int count = 0;
    for (const auto& record : answer.records) {
      if (is_spf_record(record)) {
        found = &record;
        ++count;
      }
    }
    if (count == 0) return finish(SpfResult::none, "no SPF record");
    if (count > 1) return finish(SpfResult::permerror, std::to_string(count) + " SPF records");
    ParsedRecord parsed = parse_record(*found);
    if (!parsed.error.empty()) return finish(SpfResult::permerror, parsed.error);
    record_ = std::move(parsed.record);
    next();
  }

  // 4.6.2: the directives in order, until one matches.
  void next() {
    for (; index_ < record_.directives.size(); ++index_) {
      const Directive& directive = record_.directives[index_];
      if (directive.counts_as_lookup() && !evaluation_->count_lookup_term()) {
        return finish(SpfResult::permerror, "more than 10 DNS lookups");
      }
      switch (directive.mechanism) {
        case Mechanism::all:
          return matched();
        case Mechanism::ip4:
        case Mechanism::ip6: {
          const bool v4 = directive.mechanism == Mechanism::ip4;
          const int prefix = v4 ? directive.ip4_prefix : directive.ip6_prefix;
          if (in_network(evaluation_->client(), directive.network, prefix)) return matched();
          continue;
        }
        case Mechanism::include:
        case Mechanism::a:
        case Mechanism::mx:
        case Mechanism::ptr:
        case Mechanism::exists:
          return look_up(directive);
      }
    }
    after_directives();
  }

  void look_up(const Directive& directive) {
    with_target(directive.domain, [self = shared_from_this()](std::optional<std::string> target) {
      const Directive& directive = self->record_.directives[self->index_];
      auto resume = [self](Match match) { self->resume(std::move(match)); };
      // A name that no query can carry (an empty or too long label, say from a macro) has no
      // records: it matches nothing, and an include of it finds no SPF record.
      if (!target) {
        if (directive.mechanism == Mechanism::include) {
          return self->finish(SpfResult::permerror, "include of an invalid domain name");
        }
        return resume(Match::of(false));
      }
      const int prefix =
          self->evaluation_->client().v6 ? directive.ip6_prefix : directive.ip4_prefix;
      switch (directive.mechanism) {
        case Mechanism::include:
          return self->include(*target);
        case Mechanism::a:
          return match_a(self->evaluation_, *target, prefix, resume);
        case Mechanism::mx:
          return match_mx(self->evaluation_, *target, prefix, resume);
        case Mechanism::ptr:
          return match_ptr(self->evaluation_, *target, resume);
        case Mechanism::exists:
          return match_exists(self->evaluation_, *target, resume);
        case Mechanism::all:  // answered in next(), without DNS
        case Mechanism::ip4:
        case Mechanism::ip6:
          return;
      }
    });
  }

  void resume(Match match) {
    switch (match.kind) {
      case Match::yes:
        return matched();
      case Match::no:
        ++index_;
        return next();
      case Match::error:
        return finish(match.error_result, std::move(match.problem));
    }
  }

  // 5.2: only an included pass matches; none there is a permerror.
  void include(const std::string& target) {
    check_host(evaluation_, target, depth_ + 1, [self = shared_from_this(), target](Outcome inner) {
      switch (inner.result) {
        case SpfResult::pass:
          return self->resume(Match::of(true));
        case SpfResult::fail:
        case SpfResult::softfail:
        case SpfResult::neutral:
          return self->resume(Match::of(false));
        case SpfResult::temperror:
        case SpfResult::permerror:
          return self->finish(Outcome{inner.result, std::move(inner.problem), {}, {}});
        case SpfResult::none:
          return self->finish(SpfResult::permerror, "include:" + target + " has no SPF record");
      }
    });
  }

  // 6.1: with no match, redirect= hands the whole result to another domain's record, its
  // explanation included; 4.7: without one the result is neutral.
  void after_directives() {
    if (!record_.redirect) return finish(SpfResult::neutral, {});
    if (!evaluation_->count_lookup_term()) {
      return finish(SpfResult::permerror, "more than 10 DNS lookups");
    }
    with_target(record_.redirect, [self = shared_from_this()](std::optional<std::string> target) {
      if (!target) return self->finish(SpfResult::permerror, "redirect to an invalid domain name");
      check_host(self->evaluation_, *target, self->depth_ + 1, [self, target](Outcome inner) {
        if (inner.result == SpfResult::none) {
          return self->finish(SpfResult::permerror, "redirect=" + *target + " has no SPF record");
        }
        self->finish(std::move(inner));
      });
    });
  }

  // The name a domain-spec stands for (the current domain when there is none), once %{p} is
  // resolved if it is used.
  void with_target(const std::optional<MacroString>& spec,
                   std::function<void(std::optional<std::string>)> then) {
    if (!spec) return then(domain_);
    auto expand_now = [self = shared_from_this(), macro = &*spec, then = std::move(then)] {
      then(query_name(expand(*macro, self->evaluation_->values_for(self->domain_))));
    };
    if (!spec->uses('p')) return expand_now();
    evaluation_->resolve_validated_names(std::move(expand_now));
  }

  void matched() {
    const Directive& directive = record_.directives[index_];
    Outcome outcome{directive.qualifier, {}, {}, {}};
    if (directive.qualifier == SpfResult::fail && record_.explanation) {
      outcome.explanation = record_.explanation;
      outcome.explanation_domain = domain_;
    }
    finish(std::move(outcome));
  }

  void finish(SpfResult result, std::string problem) {
    finish(Outcome{result, problem.empty() ? problem : domain_ + ": " + problem, {}, {}});
  }

  void finish(Outcome outcome) {
    auto done = std::move(done_);
    done(std::move(outcome));
  }

  const std::shared_ptr<Evaluation> evaluation_;
  const std::string domain_;
  const int depth_;
  std::function<void(Outcome)> done_;
  Record record_;
  std::size_t index_ = 0;
};

}  // namespace

void check_host(std::shared_ptr<Evaluation> evaluation, std::string domain, int depth,
                std::function<void(Outcome)> done) {
  if (depth > kMaxDepth) {
    done({SpfResult::permerror, "include and redirect nested too deeply", {}, {}});
    return;
  }
  std::make_shared<HostCheck>(std::move(evaluation), std::move(domain), depth, std::move(done))
      ->start();
}

}  // namespace relayq::policy::spf
