// One message's way from the session to the store through the content checks and signing: a
// job that holds the message while key and DMARC records are looked up on the loop and
// signatures are checked or made on libuv's worker pool. Loop thread, except the work
// functions, which touch only their job's own fields.
#include "inbound/message_checks.hpp"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <map>

#include "mta/common/ascii.hpp"
#include "mta/common/log_format.hpp"
#include "policy/dkim.hpp"
#include "policy/dmarc.hpp"
#include "policy/message_headers.hpp"

namespace relayq::mta {

namespace {

// Runs `work` on libuv's worker pool, then `after` on the loop.
struct PoolTask {
  uv_work_t request{};
  std::function<void()> work;
  std::function<void()> after;
};

void run_on_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> after) {
  auto* task = new PoolTask{{}, std::move(work), std::move(after)};
  task->request.data = task;
  uv_queue_work(
      loop, &task->request,
      [](uv_work_t* request) { static_cast<PoolTask*>(request->data)->work(); },
      [](uv_work_t* request, int) {
        std::unique_ptr<PoolTask> task(static_cast<PoolTask*>(request->data));
        task->after();
      });
}

class MessageJob : public std::enable_shared_from_this<MessageJob> {
 public:
  MessageJob(MessageCheckInput input, queue::Message message,
             std::function<void(CheckedMessage)> done)
      : input_(std::move(input)), message_(std::move(message)), done_(std::move(done)) {}

  void start() {
    const PolicySettings& settings = *input_.settings;
    // RFC 8601 5: results claiming our name are ours to write, whoever sent the message.
    if (settings.checks_anything())
      policy::remove_authentication_results(message_.body, input_.authserv_id);
    if (input_.trusted) return sign();
    if (settings.dkim_verify || settings.dmarc) return fetch_keys();
    finish_checks();
  }

 private:
  // DKIM's key records, all at once; the verification waits for the last answer.
  void fetch_keys() {
    const std::vector<std::string> names = policy::dkim_key_names(message_.body);
    if (names.empty()) return verified({});
    pending_lookups_ = names.size();
    for (const std::string& name : names) {
      input_.resolver().txt(name, [self = shared_from_this(), name](const dns::TextAnswer& a) {
        self->keys_[name] = a;
        if (--self->pending_lookups_ == 0) self->verify();
      });
    }
  }

  void verify() {
    auto self = shared_from_this();
    run_on_pool(
        input_.loop->loop(),
        [self] { self->dkim_ = policy::dkim_verify(self->message_.body, self->keys_); },
        [self] { self->verified(std::move(self->dkim_)); });
  }

  void verified(std::vector<policy::DkimSignatureResult> results) {
    dkim_ = std::move(results);
    if (input_.settings->dkim_verify) {
      metrics::Metrics& metrics = *input_.metrics;
      if (dkim_.empty())
        metrics.policy_result(metrics::PolicyCheck::dkim, metrics::PolicyResult::none).Increment();
      for (const auto& signature : dkim_)
        metrics
            .policy_result(metrics::PolicyCheck::dkim,
                           metrics::policy_result_named(policy::to_string(signature.result)))
            .Increment();
    }
    if (!input_.settings->dmarc) return finish_checks();
    evaluate_dmarc();
  }

  void evaluate_dmarc() {
    policy::DmarcInput in;
    const std::vector<std::string> from = policy::from_domains(message_.body);
    if (from.size() == 1) in.from_domain = from.front();
    if (input_.spf) {
      in.spf_domain = input_.spf->domain;
      in.spf_pass = input_.spf->result == policy::SpfResult::pass;
    }
    for (const auto& signature : dkim_)
      if (signature.result == policy::DkimResult::pass)
        in.dkim_pass_domains.push_back(signature.domain);
    policy::ResolverSource resolver = input_.resolver;
    policy::evaluate_dmarc(
        in,
        [resolver](const std::string& name, std::function<void(const dns::TextAnswer&)> done) {
          resolver().txt(name, std::move(done));
        },
        [self = shared_from_this()](policy::DmarcVerdict verdict) {
          self->input_.metrics
              ->policy_result(metrics::PolicyCheck::dmarc,
                              metrics::policy_result_named(policy::to_string(verdict.result)))
              .Increment();
          self->dmarc_ = std::move(verdict);
          self->finish_checks();
        });
  }

  // One Authentication-Results header with every result, above the rest.
  void finish_checks() {
    std::vector<AuthResult> results = input_.client_results;
    if (input_.settings->dkim_verify) {
      if (dkim_.empty()) results.push_back({"dkim", "none", "", {}});
      for (const auto& signature : dkim_) {
        AuthResult result{"dkim",
                          std::string(policy::to_string(signature.result)),
                          signature.result == policy::DkimResult::pass ? "" : signature.reason,
                          {}};
        if (!signature.domain.empty()) result.properties.emplace_back("header.d", signature.domain);
        if (!signature.selector.empty())
          result.properties.emplace_back("header.s", signature.selector);
        if (!signature.algorithm.empty())
          result.properties.emplace_back("header.a", signature.algorithm);
        if (!signature.b_prefix.empty())
          result.properties.emplace_back("header.b", signature.b_prefix);
        results.push_back(std::move(result));
      }
    }
    if (dmarc_) {
      AuthResult result{"dmarc", std::string(policy::to_string(dmarc_->result)), "", {}};
      if (dmarc_->result == policy::DmarcResult::pass ||
          dmarc_->result == policy::DmarcResult::fail)
        result.comment = "p=" + std::string(policy::to_string(dmarc_->policy));
      if (!dmarc_->from_domain.empty())
        result.properties.emplace_back("header.from", dmarc_->from_domain);
      results.push_back(std::move(result));
    }
    log_results(results);
    message_.body.insert(0, format_authentication_results(input_.authserv_id, results));
    finish();
  }

  void log_results(const std::vector<AuthResult>& results) const {
    if (!spdlog::should_log(spdlog::level::info)) return;
    std::string line;
    for (const AuthResult& result : results) {
      line += ' ';
      line += result.method;
      line += '=';
      line += result.result;
    }
    spdlog::info("event=checked id={}{}", queue::format_id(message_.envelope.id), line);
  }

  // Our own users' mail from a signer's domain gets one signature per matching key.
  void sign() {
    const std::vector<std::string> from = policy::from_domains(message_.body);
    for (const auto& signer : input_.settings->signers) {
      const bool ours = std::any_of(from.begin(), from.end(), [&](const std::string& domain) {
        return equals_ignore_case(domain, signer->domain());
      });
      if (ours) signers_.push_back(signer);
    }
    if (signers_.empty()) return finish();
    auto self = shared_from_this();
    run_on_pool(
        input_.loop->loop(),
        [self] {
          try {
            std::string headers;
            for (const auto& signer : self->signers_) headers += signer->sign(self->message_.body);
            self->signature_ = std::move(headers);
          } catch (const std::exception& error) {
            self->error_ = error.what();
          }
        },
        [self] {
          if (self->error_.empty()) {
            self->message_.body.insert(0, self->signature_);
          } else {
            spdlog::error("event=dkim_sign_failed id={} error={}",
                          queue::format_id(self->message_.envelope.id), quoted(self->error_));
          }
          self->finish();
        });
  }

  void finish() {
    message_.envelope.size = message_.body.size();
    done_({std::move(message_), std::move(error_)});
  }

  MessageCheckInput input_;
  queue::Message message_;
  std::function<void(CheckedMessage)> done_;
  std::size_t pending_lookups_ = 0;
  policy::DkimKeyRecords keys_;
  std::vector<policy::DkimSignatureResult> dkim_;
  std::optional<policy::DmarcVerdict> dmarc_;
  std::vector<std::shared_ptr<const policy::DkimSigner>> signers_;
  std::string signature_;
  std::string error_;
};

}  // namespace

void check_message(MessageCheckInput input, queue::Message message,
                   std::function<void(CheckedMessage)> done) {
  const PolicySettings& settings = *input.settings;
  const bool needed = settings.checks_anything() || (input.trusted && !settings.signers.empty());
  if (!needed) return done({std::move(message), {}});
  std::make_shared<MessageJob>(std::move(input), std::move(message), std::move(done))->start();
}

}  // namespace relayq::mta
