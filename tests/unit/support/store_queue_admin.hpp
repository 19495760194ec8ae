// A QueueAdmin straight over a real queue::Store, for the admin API's tests: no loops, each
// change is one store commit of the envelope as last stored.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <optional>

#include "mta/admin/queue_admin.hpp"
#include "queue/store.hpp"

namespace relayq::test {

class StoreQueueAdmin : public mta::QueueAdmin {
 public:
  explicit StoreQueueAdmin(queue::Store& store) : store_(store) {}

  void for_each_envelope(const std::function<bool(const queue::Envelope&)>& visit) override {
    // The store walks everything; once `visit` says stop, the rest is skipped here.
    bool more = true;
    store_.for_each_envelope([&](const queue::Envelope& envelope) {
      if (more) more = visit(envelope);
    });
  }

  std::optional<queue::Envelope> envelope(queue::MessageId id) override {
    return store_.load_envelope(id);
  }

  void hold(queue::MessageId id, Done done) override {
    change(id, std::move(done), [](queue::Envelope& envelope) {
      if (envelope.held) return false;
      envelope.held = true;
      return true;
    });
  }

  void release(queue::MessageId id, Done done) override {
    change(id, std::move(done), [](queue::Envelope& envelope) {
      if (!envelope.held) return false;
      envelope.held = false;
      return true;
    });
  }

  // The store deletes a message once no recipient is pending; the states written on the way
  // out are never read again.
  void remove(queue::MessageId id, Done done) override {
    change(id, std::move(done), [](queue::Envelope& envelope) {
      for (auto& recipient : envelope.recipients) recipient.state = queue::RecipientState::bounced;
      return true;
    });
  }

  void retry(queue::MessageId id, Done done) override {
    change(id, std::move(done), [](queue::Envelope& envelope) { return make_due(envelope); });
  }

  void retry_all(std::function<void(std::size_t)> done) override {
    std::size_t count = 0;
    store_.for_each_envelope([&](const queue::Envelope& envelope) {
      auto after = envelope;
      if (!after.held && make_due(after) &&
          commit(envelope, after).outcome == mta::AdminOutcome::done) {
        ++count;
      }
    });
    done(count);
  }

 private:
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Every pending recipient due now; false when nothing is pending.
  static bool make_due(queue::Envelope& envelope) {
    bool any = false;
    for (auto& recipient : envelope.recipients) {
      if (recipient.state != queue::RecipientState::pending) continue;
      recipient.next_attempt_ms = now_ms();
      any = true;
    }
    return any;
  }

  mta::AdminResult commit(const queue::Envelope& before, const queue::Envelope& after) {
    std::promise<mta::AdminResult> committed;
    store_.commit(before, after, std::nullopt, [&](const queue::StoreResult& result) {
      committed.set_value(result.ok() ? mta::AdminResult{}
                                      : mta::AdminResult{mta::AdminOutcome::failed, result.detail});
    });
    return committed.get_future().get();
  }

  void change(queue::MessageId id, Done done, const std::function<bool(queue::Envelope&)>& apply) {
    const auto before = store_.load_envelope(id);
    if (!before) return done({mta::AdminOutcome::not_found, ""});
    auto after = *before;
    if (!apply(after)) return done({mta::AdminOutcome::no_change, ""});
    done(commit(*before, after));
  }

  queue::Store& store_;
};

}  // namespace relayq::test
