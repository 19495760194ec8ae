// Verifies recipients of our own domains for the inbound sessions of one loop, by asking the
// domain's mailbox server: a connection of its own over the route's LMTP next hop, MAIL FROM:<>
// and RCPT, no content (a ClientSession probe). Answers that say yes or no are remembered for
// a minute, so that a busy domain is not asked per message; probes for an address already
// being asked wait for that one. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/resolver.hpp"
#include "mta/common/recipient_verifier.hpp"
#include "mta/delivery/engine.hpp"
#include "mta/outbound/connection.hpp"

namespace relayq::mta {

class RecipientProber final : public RecipientVerifier, private ConnectionEvents {
 public:
  // `settings` is the engine's own pointer (a reload replaces what it points to); `resolver`
  // gives the loop's resolver at each use.
  RecipientProber(uv_loop_t* loop, const std::shared_ptr<const DeliverySettings>& settings,
                  std::function<dns::Resolver&()> resolver);
  ~RecipientProber() override;

  void verify(const std::string& address, Done done) override;
  // The daemon is stopping: probes in flight end (their waiters hear "unavailable").
  void stop();

 private:
  struct Cached {
    RecipientVerdict verdict;
    std::int64_t until_ms;
  };
  // One probe's connection and what it asks about.
  struct Probe {
    std::unique_ptr<OutboundConnection> connection;
    std::string address;
    bool answered = false;
  };

  void start_probe(const std::string& address);
  void open(const std::string& address, const Route& route, std::vector<dns::NextHop> hops);
  void answer(const std::string& address, RecipientVerdict verdict);
  void answer(Probe& probe, RecipientVerdict verdict);

  void connection_ready(OutboundConnection& connection) override;
  void transaction_done(OutboundConnection& connection, Job job,
                        const TransactionResult& result) override;
  void connection_failed(OutboundConnection& connection, const SmtpReply& reason) override;
  void connection_closed(OutboundConnection& connection) override;

  uv_loop_t* loop_;
  const std::shared_ptr<const DeliverySettings>& settings_;
  std::function<dns::Resolver&()> resolver_;
  // Short timeouts: a client is waiting for its RCPT reply.
  std::shared_ptr<const ClientSessionConfig> session_config_;
  std::unordered_map<std::string, std::vector<Done>> waiting_;  // by address being asked
  std::unordered_map<std::string, Cached> cache_;
  std::map<OutboundConnection*, Probe> probes_;
  bool stopped_ = false;
};

}  // namespace relayq::mta
