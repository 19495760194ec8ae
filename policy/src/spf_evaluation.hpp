// The state one SPF evaluation shares between its check_host() calls (RFC 7208 4.6.4's
// limits, the macro values, the validated names of %{p}) and the DNS lookups they make. Runs
// on the thread that started it; answers arrive on that thread too.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/spf.hpp"
#include "spf_macro.hpp"
#include "spf_record.hpp"

namespace relayq::policy::spf {

// What one check_host() concluded. For fail, the exp= of the record whose directive failed,
// with that record's <domain> for %{d}: only the outermost result's explanation is looked up.
struct Outcome {
  SpfResult result = SpfResult::neutral;
  std::string problem;
  std::optional<MacroString> explanation;
  std::string explanation_domain;
};

// A mechanism's verdict: match, no match, or an error that ends check_host().
struct Match {
  enum Kind { yes, no, error } kind = no;
  SpfResult error_result = SpfResult::permerror;  // temperror or permerror, for error
  std::string problem;

  static Match of(bool matched) { return {matched ? yes : no, SpfResult::permerror, {}}; }
  static Match error_of(SpfResult result, std::string problem) {
    return {error, result, std::move(problem)};
  }
};

class Evaluation : public std::enable_shared_from_this<Evaluation> {
 public:
  static constexpr int kMaxLookupTerms = 10;    // 4.6.4: include, a, mx, ptr, exists, redirect
  static constexpr int kMaxVoidLookups = 2;     // 4.6.4: answers with no records, or NXDOMAIN
  static constexpr std::size_t kMaxNames = 10;  // 4.6.4: MX and PTR names per mechanism

  Evaluation(SpfDns& dns, MacroValues values) : dns_(dns), values_(std::move(values)) {}

  // Runs `task`, at once or, when another task is running, right after it: answers that
  // arrive synchronously from inside a lookup wait here, so chains of them never deepen the
  // stack however many lookups an evaluation makes.
  void post(std::function<void()> task);

  // Lookups whose answers arrive through post(). addresses() asks for the client's family.
  void txt(const std::string& name, std::function<void(const dns::TextAnswer&)> then);
  void a(const std::string& name, std::function<void(const dns::AddressAnswer&)> then);
  void addresses(const std::string& name, std::function<void(const dns::AddressAnswer&)> then);
  void mx(const std::string& name, std::function<void(const dns::MxAnswer&)> then);
  void ptr(std::function<void(const dns::NameAnswer&)> then);

  // Count one term that costs a lookup / one void lookup: false once over the limit.
  bool count_lookup_term() { return ++lookup_terms_ <= kMaxLookupTerms; }
  bool count_void_lookup() { return ++void_lookups_ <= kMaxVoidLookups; }

  // Looks up the validated names of the client (for %{p}) unless done already, then `then`.
  void resolve_validated_names(std::function<void()> then);
  // The macro values with <domain> = `domain` and %{p} chosen for it (resolved or "unknown").
  MacroValues values_for(const std::string& domain) const;

  const dns::IpAddress& client() const { return values_.client; }

 private:
  template <class Answer>
  std::function<void(const Answer&)> deferred(std::function<void(const Answer&)> then);

  SpfDns& dns_;
  const MacroValues values_;
  int lookup_terms_ = 0;
  int void_lookups_ = 0;
  std::optional<std::vector<std::string>> validated_names_;
  std::deque<std::function<void()>> tasks_;
  bool running_ = false;
};

// check_host() (4): fetches <domain>'s record and evaluates it; `done` gets the outcome.
// `depth` counts the include and redirect hops that led here.
void check_host(std::shared_ptr<Evaluation> evaluation, std::string domain, int depth,
                std::function<void(Outcome)> done);

// The explanation of a fail (6.2): the exp= record's text expanded, or "" when there is none
// or it cannot be had (DNS errors, not exactly one record, bad macros, non-ASCII text).
void explain(std::shared_ptr<Evaluation> evaluation, const Outcome& outcome,
             std::function<void(std::string)> done);

// The mechanisms that look up addresses (5.3 to 5.5, 5.7) for `target`, a valid query name;
// `prefix` is the CIDR length for the client's family.
void match_a(std::shared_ptr<Evaluation> evaluation, const std::string& target, int prefix,
             std::function<void(Match)> done);
void match_mx(std::shared_ptr<Evaluation> evaluation, const std::string& target, int prefix,
              std::function<void(Match)> done);
void match_ptr(std::shared_ptr<Evaluation> evaluation, const std::string& target,
               std::function<void(Match)> done);
void match_exists(std::shared_ptr<Evaluation> evaluation, const std::string& target,
                  std::function<void(Match)> done);

// The client's PTR names (the first 10) that `wanted` accepts and whose addresses include
// the client, in PTR order (5.5); a DNS error on an address lookup just drops that name.
// `done` also gets the status of the PTR lookup itself.
void validated_names(std::shared_ptr<Evaluation> evaluation,
                     std::function<bool(const std::string&)> wanted,
                     std::function<void(dns::Status, std::vector<std::string>)> done);

// The client is inside network/prefix, in the same family.
bool in_network(const dns::IpAddress& client, const dns::IpAddress& network, int prefix);

}  // namespace relayq::policy::spf
