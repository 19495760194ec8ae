// Outbound delivery on one loop: the messages this loop owns (id % loops), their due schedule,
// the destinations their recipients go to with a connection pool each, and the bookkeeping of
// every reply (delivered, deferred by the retry policy, bounced with a DSN).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/nexthop.hpp"
#include "dns/resolver.hpp"
#include "metrics/metrics.hpp"
#include "mta/admin/queue_admin.hpp"
#include "mta/delivery/recipient_fate.hpp"
#include "mta/delivery/reply_category.hpp"
#include "mta/delivery/router.hpp"
#include "mta/delivery/shaping.hpp"
#include "mta/net/loop_thread.hpp"
#include "mta/net/tls_context.hpp"
#include "mta/outbound/connection.hpp"
#include "queue/census.hpp"
#include "queue/retry_policy.hpp"
#include "queue/schedule.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// Everything delivery reads from the config, as one immutable snapshot.
struct DeliverySettings {
  std::string hostname;
  Router router;
  queue::RetryPolicies retry;
  // The client session's settings for SMTP and LMTP (by `lmtp`) and each TlsPolicy (by its
  // value), and the client TLS contexts by CA file ("": encryption without verification).
  std::array<std::array<std::shared_ptr<const ClientSessionConfig>, 3>, 2> clients;
  std::map<std::string, std::shared_ptr<const net::TlsContext>> tls_contexts;
  dns::ResolverOptions resolver;
  OutboundTimeouts timeouts;
  std::size_t max_active_messages = 4096;  // per loop: messages loaded and being delivered
  ReplyClassifier classifier;              // the category of each failure reply

  const std::shared_ptr<const ClientSessionConfig>& client(bool lmtp, TlsPolicy tls) const {
    return clients[lmtp ? 1 : 0][static_cast<std::size_t>(tls)];
  }
};

class DeliveryEngine : public ConnectionEvents {
 public:
  // `route_message` hands a message id to the engine that owns it (possibly this one). The
  // shaper is every loop's: its lanes limit a destination across all of them.
  DeliveryEngine(net::LoopThread& loop, queue::Store& store, metrics::Metrics& metrics,
                 std::shared_ptr<const DeliverySettings> settings,
                 std::shared_ptr<dns::Cache> dns_cache, std::shared_ptr<Shaper> shaper,
                 std::function<void(queue::MessageId)> route_message, QueueCensus& census);
  ~DeliveryEngine() override;

  // Entries of the stored due index, read after a restart: before the loop runs, or on the
  // loop thread while it does (the daemon loads the index in the background once it takes
  // mail). An entry that no longer holds (the message was delivered, rescheduled or is being
  // delivered meanwhile) is harmless: the schedule checks each one against the envelope.
  void add_due(const std::vector<queue::DueEntry>& entries);
  // On the loop thread from here on.
  void start();
  // A message that was just stored (or a DSN, or an operator's retry): deliver what is due.
  void deliver_now(queue::MessageId id);
  // Closes every connection and timer; results that arrive later are ignored.
  void stop();
  // An operator's change to a message this engine owns; waits for a delivery round in
  // progress to end, so that it never races one.
  enum class AdminAction { hold, release, remove, retry };
  void admin(queue::MessageId id, AdminAction action, QueueAdmin::Done done);
  // A reload: routes, retry policy, limits and DNS servers apply to the next decisions (the
  // daemon gives the shaper its new limits).
  void update_settings(std::shared_ptr<const DeliverySettings> settings);
  // The loop's resolver, which the inbound policy checks share; after start(), and replaced by
  // update_settings() when the DNS servers change.
  dns::Resolver& resolver() { return *resolver_; }
  // The current settings; the pointer itself is replaced by update_settings().
  const std::shared_ptr<const DeliverySettings>& settings() const { return settings_; }

 private:
  // A recipient deferred in this round, with what was said (for a "delayed" DSN).
  struct Deferral {
    std::uint16_t index = 0;
    SmtpReply reply;
    std::string remote_host;
  };

  struct AdminOp {
    AdminAction action;
    QueueAdmin::Done done;
  };

  struct ActiveMessage {
    queue::Envelope stored;   // as the store has it: the `before` of the next commit
    queue::Envelope current;  // with this round's outcomes applied
    std::shared_ptr<const std::string> body;
    std::size_t jobs_outstanding = 0;
    std::vector<queue::DsnRecipient> dsn;    // bounces and delays of this round
    std::vector<Deferral> deferred;          // recipients deferred this round
    std::vector<queue::DueEntry> postponed;  // schedule entries that came due meanwhile
    std::vector<AdminOp> admin_ops;          // operators' changes waiting for the round
    bool loaded = false;
    // The round's commit: the DSN it adds, and whether a commit is under way or failed. A
    // round that delivered or bounced someone and whose commit failed stays active, holding
    // what the next hops accepted, and only its commit is tried again: nothing accepted is
    // handed out a second time.
    std::optional<queue::Message> dsn_message;
    std::optional<queue::MessageId> dsn_id;
    bool committing = false;
    std::uint32_t commit_failures = 0;
  };

  struct Destination {
    Route route;
    std::deque<Job> queue;
    std::vector<OutboundConnection*> connections;
    std::size_t resolving = 0;   // connections waiting for their next hops
    std::uint32_t failures = 0;  // consecutive connection failures
    std::int64_t dead_until_ms = 0;
    SmtpReply dead_reason;
    // Its share of traffic; null until known (an MX destination may first have to learn its
    // MX hosts, when [shaping] names MX host sets).
    std::shared_ptr<Lane> lane;
    bool finding_lane = false;
    bool waiting = false;  // for the lane's rate: a wake-up is set
  };

  // engine.cpp: loads a message on the store's reader thread and hands it to `then` back on
  // this loop.
  using Loaded = void (DeliveryEngine::*)(queue::MessageId, std::optional<queue::Message>);
  void load_then(queue::MessageId id, bool with_body, Loaded then);

  // schedule_pump.cpp: due entries become active messages, and their due recipients jobs.
  void pump_schedule();
  void arm_schedule_timer();
  void activate(queue::MessageId id);
  void on_loaded(queue::MessageId id, std::optional<queue::Message> message);
  void end_active(queue::MessageId id);

  // destinations.cpp: a job queue and a connection pool per destination.
  void enqueue(const Route& route, Job job);
  void dispatch(Destination& destination);
  void open_connection(Destination& destination);
  // lanes.cpp: each destination's lane, the wake-ups its rates set, and the slow-downs.
  bool find_lane(Destination& destination);
  void lane_found(const std::string& key, const std::string& lane);
  void wake_later(Destination& destination, std::int64_t wait_us);
  void wake_due();
  void arm_wake_timer();
  void learn_from(Destination& destination, const std::vector<SmtpReply>& replies);
  void connection_released(Destination& destination);
  // The lanes' clock: monotonic, and the same on every loop.
  static std::int64_t monotonic_us() { return static_cast<std::int64_t>(uv_hrtime() / 1000); }
  void on_resolved(const std::string& key, const dns::NextHopResult& result);
  void give_job(OutboundConnection& connection, Destination& destination);
  void fail_queued(Destination& destination, const SmtpReply& reply, const std::string& nexthop);
  OutboundMessage outbound_message(const ActiveMessage& message, const Job& job) const;

  void connection_ready(OutboundConnection& connection) override;
  void transaction_done(OutboundConnection& connection, Job job,
                        const TransactionResult& result) override;
  void connection_failed(OutboundConnection& connection, const SmtpReply& reason) override;
  void connection_closed(OutboundConnection& connection) override;
  void tls_handshake_done(OutboundConnection& connection, bool ok) override;
  OutboundTls tls_for(const Route& route);

  // delivery_round.cpp: replies become fates, then a DSN and a commit end the round.
  void record(const Job& job, const std::vector<SmtpReply>& replies, const AttemptContext& context);
  void finish_round(queue::MessageId id);
  void commit_round(queue::MessageId id);
  static bool round_changed_fates(const ActiveMessage& active);
  void on_committed(queue::MessageId id, const queue::StoreResult& result,
                    std::optional<queue::MessageId> dsn_id);
  queue::RetryRule retry_rule_for(const queue::Envelope& envelope, std::uint16_t index) const;
  metrics::Counter& failure_counter(ReplyCategory category, metrics::FailureResult result) {
    return *failure_counters_[static_cast<std::size_t>(category)][static_cast<std::size_t>(result)];
  }

  // operator_actions.cpp: operators' changes, applied between delivery rounds.
  void on_admin_loaded(queue::MessageId id, std::optional<queue::Message> message);
  void admin_finished(queue::MessageId id, std::vector<AdminOp> ops,
                      std::vector<AdminOutcome> outcomes, const queue::StoreResult& result,
                      const queue::Envelope& after);

  // engine.cpp sets these up; the files above share them.
  net::LoopThread& loop_;
  queue::Store& store_;
  metrics::Metrics& metrics_;
  std::shared_ptr<const DeliverySettings> settings_;
  std::shared_ptr<dns::Cache> dns_cache_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::shared_ptr<Shaper> shaper_;
  uv_timer_t wake_timer_{};
  std::multimap<std::int64_t, std::string> wakeups_;  // uv_now() ms -> destination key
  std::function<void(queue::MessageId)> route_message_;
  QueueCensus& census_;
  queue::Schedule schedule_;
  uv_timer_t schedule_timer_{};
  std::unordered_map<queue::MessageId, ActiveMessage> active_;
  std::unordered_map<std::string, Destination> destinations_;
  std::unordered_map<OutboundConnection*, std::unique_ptr<OutboundConnection>> connections_;
  std::mt19937 random_;
  net::TlsSessionCache tls_sessions_;  // to resume TLS with next hops this loop has met
  // relayq_delivery_failures_total by category, then result: looked up once, at construction.
  std::array<std::array<metrics::Counter*, metrics::kFailureResults.size()>,
             kReplyCategories.size()>
      failure_counters_{};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace relayq::mta
