// GET /v1/stats: queue counts by state and by destination domain, gathered in one pass.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mta/admin/json.hpp"
#include "mta/admin/queue_admin.hpp"
#include "queue/message.hpp"

namespace relayq::mta {

// "shaping" of GET /v1/stats: [{"name", "configured", "slowdown_steps", "level", "message_rate",
// "connections", "max_connections"}, ...].
Json shaping_json(const std::vector<ShapingStatus>& lanes);

class QueueStats {
 public:
  // Domains listed by name; the rest are summed under "other" so the answer stays small.
  static constexpr std::size_t kTopDomains = 50;

  explicit QueueStats(std::int64_t now_ms) : now_ms_(now_ms) {}

  void add(const queue::Envelope& envelope);

  // {"messages", "by_state": {"ready", "scheduled", "held"}, "recipients": {"pending",
  // "delivered", "bounced"}, "by_domain": {domain: {"messages", "recipients"}, ..., "other"},
  // "oldest_age_s"}. Domains count pending recipients, ordered by that count.
  Json to_json() const;

 private:
  struct DomainCount {
    std::uint64_t messages = 0;
    std::uint64_t recipients = 0;
  };

  std::int64_t now_ms_;
  std::uint64_t messages_ = 0;
  std::uint64_t ready_ = 0;
  std::uint64_t scheduled_ = 0;
  std::uint64_t held_ = 0;
  std::uint64_t pending_ = 0;
  std::uint64_t delivered_ = 0;
  std::uint64_t bounced_ = 0;
  std::int64_t oldest_received_ms_ = 0;
  std::unordered_map<std::string, DomainCount> domains_;
};

}  // namespace relayq::mta
