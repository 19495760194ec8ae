// The daemon's QueueAdmin: reads straight from the store, changes through the engine of the
// loop that owns the message.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "mta/admin/queue_admin.hpp"
#include "mta/delivery/engine.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

class DaemonQueueAdmin : public QueueAdmin {
 public:
  // Runs an operator's change on the owning loop (posts it there).
  using Dispatch =
      std::function<void(queue::MessageId, DeliveryEngine::AdminAction, QueueAdmin::Done)>;

  DaemonQueueAdmin(queue::Store& store, Dispatch dispatch, std::shared_ptr<const Shaper> shaper)
      : store_(store), dispatch_(std::move(dispatch)), shaper_(std::move(shaper)) {}
  ~DaemonQueueAdmin() override;
  DaemonQueueAdmin(const DaemonQueueAdmin&) = delete;
  DaemonQueueAdmin& operator=(const DaemonQueueAdmin&) = delete;

  // Drops the retries retry_all() has not handed on yet; call it before the loops stop.
  void stop();

  void for_each_envelope(const std::function<bool(const queue::Envelope&)>& visit) override;
  std::optional<queue::Envelope> envelope(queue::MessageId id) override;
  void hold(queue::MessageId id, Done done) override;
  void release(queue::MessageId id, Done done) override;
  void remove(queue::MessageId id, Done done) override;
  void retry(queue::MessageId id, Done done) override;
  // Answers with the count at once, then hands the retries on at most kRetriesInFlight at a
  // time: each one loads and rewrites its message, and a million of them at once would hold a
  // million envelopes in memory.
  void retry_all(std::function<void(std::size_t)> done) override;
  std::vector<ShapingStatus> shaping() override { return shaper_->status(); }

  static constexpr std::size_t kRetriesInFlight = 1024;

 private:
  // The retries of retry_all() not handed on yet; shared with their completions, which may
  // run after this object is gone.
  struct Retries {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<queue::MessageId> waiting;
    std::size_t in_flight = 0;
    bool stopping = false;
  };
  void run_retries();

  queue::Store& store_;
  Dispatch dispatch_;
  std::shared_ptr<const Shaper> shaper_;
  std::shared_ptr<Retries> retries_ = std::make_shared<Retries>();
  std::thread retrier_;  // started by the first retry_all()
};

}  // namespace relayq::mta
