// Queue counts for GET /v1/stats.
#include "admin/stats.hpp"

#include <algorithm>
#include <vector>

#include "dns/domain_name.hpp"

namespace relayq::mta {

void QueueStats::add(const queue::Envelope& envelope) {
  ++messages_;
  if (messages_ == 1 || envelope.received_ms < oldest_received_ms_) {
    oldest_received_ms_ = envelope.received_ms;
  }
  bool due_now = false;
  std::vector<std::string> message_domains;
  for (const auto& recipient : envelope.recipients) {
    switch (recipient.state) {
      case queue::RecipientState::delivered:
        ++delivered_;
        continue;
      case queue::RecipientState::bounced:
        ++bounced_;
        continue;
      case queue::RecipientState::pending:
        break;
    }
    ++pending_;
    due_now = due_now || due_ms(envelope, recipient) <= now_ms_;
    auto domain = dns::domain_of_mailbox(recipient.address);
    ++domains_[domain].recipients;
    if (std::find(message_domains.begin(), message_domains.end(), domain) ==
        message_domains.end()) {
      message_domains.push_back(std::move(domain));
    }
  }
  for (const auto& domain : message_domains) ++domains_[domain].messages;
  if (envelope.held) {
    ++held_;
  } else if (due_now) {
    ++ready_;
  } else {
    ++scheduled_;
  }
}

Json shaping_json(const std::vector<ShapingStatus>& lanes) {
  Json out = Json::array();
  for (const auto& lane : lanes) {
    out.push_back(Json{{"name", lane.name},
                       {"configured", lane.configured},
                       {"slowdown_steps", lane.slowdown_steps},
                       {"level", lane.level},
                       {"message_rate", lane.message_rate},
                       {"connections", lane.connections},
                       {"max_connections", lane.max_connections}});
  }
  return out;
}

Json QueueStats::to_json() const {
  std::vector<std::pair<std::string, DomainCount>> domains(domains_.begin(), domains_.end());
  std::sort(domains.begin(), domains.end(), [](const auto& a, const auto& b) {
    return a.second.recipients != b.second.recipients ? a.second.recipients > b.second.recipients
                                                      : a.first < b.first;
  });
  Json by_domain = Json::object();
  DomainCount other;
  for (std::size_t i = 0; i < domains.size(); ++i) {
    const auto& [name, count] = domains[i];
    if (i < kTopDomains) {
      by_domain[name] = Json{{"messages", count.messages}, {"recipients", count.recipients}};
    } else {
      other.messages += count.messages;
      other.recipients += count.recipients;
    }
  }
  if (domains.size() > kTopDomains) {
    by_domain["other"] = Json{{"messages", other.messages}, {"recipients", other.recipients}};
  }
  const auto oldest_ms =
      messages_ == 0 ? 0 : std::max<std::int64_t>(0, now_ms_ - oldest_received_ms_);
  return Json{
      {"messages", messages_},
      {"by_state", Json{{"ready", ready_}, {"scheduled", scheduled_}, {"held", held_}}},
      {"recipients", Json{{"pending", pending_}, {"delivered", delivered_}, {"bounced", bounced_}}},
      {"by_domain", std::move(by_domain)},
      {"oldest_age_s", static_cast<double>(oldest_ms) / 1000.0}};
}

}  // namespace relayq::mta
