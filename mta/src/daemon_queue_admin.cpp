// The daemon's QueueAdmin: store reads, and changes handed to the owning loop's engine.
#include "daemon_queue_admin.hpp"

#include <algorithm>
#include <vector>

namespace relayq::mta {

void DaemonQueueAdmin::for_each_envelope(const std::function<bool(const queue::Envelope&)>& visit) {
  bool more = true;
  store_.for_each_envelope([&](const queue::Envelope& envelope) {
    if (more) more = visit(envelope);
  });
}

std::optional<queue::Envelope> DaemonQueueAdmin::envelope(queue::MessageId id) {
  return store_.load_envelope(id);
}

void DaemonQueueAdmin::hold(queue::MessageId id, Done done) {
  dispatch_(id, OutboundEngine::AdminAction::hold, std::move(done));
}

void DaemonQueueAdmin::release(queue::MessageId id, Done done) {
  dispatch_(id, OutboundEngine::AdminAction::release, std::move(done));
}

void DaemonQueueAdmin::remove(queue::MessageId id, Done done) {
  dispatch_(id, OutboundEngine::AdminAction::remove, std::move(done));
}

void DaemonQueueAdmin::retry(queue::MessageId id, Done done) {
  dispatch_(id, OutboundEngine::AdminAction::retry, std::move(done));
}

void DaemonQueueAdmin::retry_all(std::function<void(std::size_t)> done) {
  std::vector<queue::MessageId> ids;
  store_.for_each_envelope([&](const queue::Envelope& envelope) {
    const bool pending = std::any_of(envelope.recipients.begin(), envelope.recipients.end(),
                                     [](const queue::Recipient& recipient) {
                                       return recipient.state == queue::RecipientState::pending;
                                     });
    if (pending && !envelope.held) ids.push_back(envelope.id);
  });
  for (const auto id : ids) dispatch_(id, OutboundEngine::AdminAction::retry, [](const auto&) {});
  done(ids.size());
}

}  // namespace relayq::mta
