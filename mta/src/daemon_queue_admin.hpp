// The daemon's QueueAdmin: reads straight from the store, changes through the engine of the
// loop that owns the message.
#pragma once

#include <functional>

#include "mta/queue_admin.hpp"
#include "outbound_engine.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

class DaemonQueueAdmin : public QueueAdmin {
 public:
  // Runs an operator's change on the owning loop (posts it there).
  using Dispatch =
      std::function<void(queue::MessageId, OutboundEngine::AdminAction, QueueAdmin::Done)>;

  DaemonQueueAdmin(queue::Store& store, Dispatch dispatch)
      : store_(store), dispatch_(std::move(dispatch)) {}

  void for_each_envelope(const std::function<bool(const queue::Envelope&)>& visit) override;
  std::optional<queue::Envelope> envelope(queue::MessageId id) override;
  void hold(queue::MessageId id, Done done) override;
  void release(queue::MessageId id, Done done) override;
  void remove(queue::MessageId id, Done done) override;
  void retry(queue::MessageId id, Done done) override;
  void retry_all(std::function<void(std::size_t)> done) override;

 private:
  queue::Store& store_;
  Dispatch dispatch_;
};

}  // namespace relayq::mta
