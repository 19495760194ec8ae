// One SPF evaluation's shared state: the task queue that keeps synchronous DNS answers off the
// stack, the lookups, and the validated names behind %{p}. On the evaluation's thread.
#include "spf_evaluation.hpp"

#include <utility>

#include "spf_names.hpp"

namespace relayq::policy::spf {

void Evaluation::post(std::function<void()> task) {
  tasks_.push_back(std::move(task));
  if (running_) return;
  running_ = true;
  while (!tasks_.empty()) {
    auto next = std::move(tasks_.front());
    tasks_.pop_front();
    next();
  }
  running_ = false;
}

template <class Answer>
std::function<void(const Answer&)> Evaluation::deferred(std::function<void(const Answer&)> then) {
  return [self = shared_from_this(), then = std::move(then)](const Answer& answer) {
    const auto keep = self;  // the DNS side may drop this callback while it runs
    keep->post([then, answer] { then(answer); });
  };
}

void Evaluation::txt(const std::string& name, std::function<void(const dns::TextAnswer&)> then) {
  dns_.txt(name, deferred(std::move(then)));
}

void Evaluation::a(const std::string& name, std::function<void(const dns::AddressAnswer&)> then) {
  dns_.a(name, deferred(std::move(then)));
}

void Evaluation::addresses(const std::string& name,
                           std::function<void(const dns::AddressAnswer&)> then) {
  if (values_.client.v6) {
    dns_.aaaa(name, deferred(std::move(then)));
  } else {
    dns_.a(name, deferred(std::move(then)));
  }
}

void Evaluation::mx(const std::string& name, std::function<void(const dns::MxAnswer&)> then) {
  dns_.mx(name, deferred(std::move(then)));
}

void Evaluation::ptr(std::function<void(const dns::NameAnswer&)> then) {
  dns_.ptr(values_.client, deferred(std::move(then)));
}

void Evaluation::resolve_validated_names(std::function<void()> then) {
  if (validated_names_) {
    then();
    return;
  }
  validated_names(
      shared_from_this(), [](const std::string&) { return true; },
      [self = shared_from_this(), then = std::move(then)](dns::Status,
                                                          std::vector<std::string> names) {
        self->validated_names_ = std::move(names);
        then();
      });
}

// 7.3: %{p} is a validated name of the client, one under <domain> if there is one, else
// "unknown".
MacroValues Evaluation::values_for(const std::string& domain) const {
  MacroValues values = values_;
  values.domain = domain;
  values.validated_name = "unknown";
  if (validated_names_ && !validated_names_->empty()) {
    values.validated_name = validated_names_->front();
    for (const auto& name : *validated_names_) {
      if (is_within(name, domain)) {
        values.validated_name = name;
        break;
      }
    }
  }
  return values;
}

}  // namespace relayq::policy::spf
