// What the admin API may do to the queue. The daemon implements it: reads go to the store,
// changes go to the loop that owns the message, so that they never race its delivery.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "queue/message.hpp"

namespace relayq::mta {

enum class AdminOutcome {
  done,       // the change is stored
  not_found,  // no such message
  no_change,  // already in that state (release of a message not held, say)
  failed,     // the store refused the change; `detail` says why
};

struct AdminResult {
  AdminOutcome outcome = AdminOutcome::done;
  std::string detail;
};

// A destination's traffic shaping as `relayq queue stats` shows it: one with a [shaping] entry,
// or one slowed down by its replies.
struct ShapingStatus {
  std::string name;  // the [shaping] entry's, or the destination's domain or route
  bool configured = false;
  std::uint32_t slowdown_steps = 0;
  double level = 1;         // the fraction of its configured rate and connections in force
  double message_rate = 0;  // messages per second in force; 0 = no limit
  std::uint32_t connections = 0;
  std::uint32_t max_connections = 0;  // in force
};

class QueueAdmin {
 public:
  using Done = std::function<void(const AdminResult&)>;  // may run on any thread
  virtual ~QueueAdmin() = default;

  // Reads, from any thread; they never wait for a loop. `visit` returns false to stop early.
  virtual void for_each_envelope(const std::function<bool(const queue::Envelope&)>& visit) = 0;
  virtual std::optional<queue::Envelope> envelope(queue::MessageId id) = 0;

  // Changes. A message in the middle of a delivery attempt is changed when the attempt ends.
  virtual void hold(queue::MessageId id, Done done) = 0;     // no delivery until released
  virtual void release(queue::MessageId id, Done done) = 0;  // back on its schedule
  virtual void remove(queue::MessageId id, Done done) = 0;   // gone, no DSN
  virtual void retry(queue::MessageId id, Done done) = 0;    // every pending recipient due now
  // retry() for every message that is not held; `done` gets how many were made due.
  virtual void retry_all(std::function<void(std::size_t)> done) = 0;
  // The destinations being shaped, from any thread.
  virtual std::vector<ShapingStatus> shaping() { return {}; }
};

}  // namespace relayq::mta
