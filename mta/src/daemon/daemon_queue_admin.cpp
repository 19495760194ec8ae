// The daemon's QueueAdmin: store reads, and changes handed to the owning loop's engine.
#include "mta/daemon/daemon_queue_admin.hpp"

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
  dispatch_(id, DeliveryEngine::AdminAction::hold, std::move(done));
}

void DaemonQueueAdmin::release(queue::MessageId id, Done done) {
  dispatch_(id, DeliveryEngine::AdminAction::release, std::move(done));
}

void DaemonQueueAdmin::remove(queue::MessageId id, Done done) {
  dispatch_(id, DeliveryEngine::AdminAction::remove, std::move(done));
}

void DaemonQueueAdmin::retry(queue::MessageId id, Done done) {
  dispatch_(id, DeliveryEngine::AdminAction::retry, std::move(done));
}

void DaemonQueueAdmin::retry_all(std::function<void(std::size_t)> done) {
  std::vector<queue::MessageId> ids;
  store_.for_each_envelope([&](const queue::Envelope& envelope) {
    if (envelope.has_pending() && !envelope.held) ids.push_back(envelope.id);
  });
  const std::size_t count = ids.size();
  {
    std::lock_guard lock(retries_->mutex);
    if (!retries_->stopping) {
      retries_->waiting.insert(retries_->waiting.end(), ids.begin(), ids.end());
      if (!retrier_.joinable()) retrier_ = std::thread([this] { run_retries(); });
      retries_->wake.notify_one();
    }
  }
  done(count);
}

void DaemonQueueAdmin::run_retries() {
  const std::shared_ptr<Retries> retries = retries_;
  for (;;) {
    queue::MessageId id = 0;
    {
      std::unique_lock lock(retries->mutex);
      retries->wake.wait(lock, [&] {
        return retries->stopping ||
               (!retries->waiting.empty() && retries->in_flight < kRetriesInFlight);
      });
      if (retries->stopping) return;
      id = retries->waiting.front();
      retries->waiting.pop_front();
      if (retries->waiting.empty()) retries->waiting.shrink_to_fit();
      ++retries->in_flight;
    }
    dispatch_(id, DeliveryEngine::AdminAction::retry, [retries](const AdminResult&) {
      std::lock_guard lock(retries->mutex);
      --retries->in_flight;
      retries->wake.notify_one();
    });
  }
}

void DaemonQueueAdmin::stop() {
  {
    std::lock_guard lock(retries_->mutex);
    retries_->stopping = true;
    retries_->waiting.clear();
  }
  retries_->wake.notify_one();
  if (retrier_.joinable()) retrier_.join();
}

DaemonQueueAdmin::~DaemonQueueAdmin() {
  stop();
}

}  // namespace relayq::mta
