// What happens to a complete message between the session and the store: with any check on,
// Authentication-Results claiming our name removed; for mail from strangers, DKIM signatures
// verified, DMARC evaluated and one Authentication-Results header added; for our own users'
// mail, DKIM signatures added.
// DNS on the loop's resolver, signatures and their checks on libuv's worker pool. Loop thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/metrics.hpp"
#include "mta/inbound/policy_settings.hpp"
#include "mta/net/loop_thread.hpp"
#include "mta/smtp/authentication_results.hpp"
#include "policy/resolver_dns.hpp"
#include "policy/spf.hpp"
#include "queue/message.hpp"

namespace relayq::mta {

struct MessageCheckInput {
  std::shared_ptr<const PolicySettings> settings;
  policy::ResolverSource resolver;
  net::LoopThread* loop = nullptr;
  metrics::Metrics* metrics = nullptr;
  std::string authserv_id;  // server.hostname
  // The client has relay rights (AUTH or relay.networks): its mail is signed, not checked.
  bool trusted = false;
  std::vector<AuthResult> client_results;  // iprev and spf, from ClientChecks
  std::optional<policy::SpfVerdict> spf;   // for DMARC
};

// The message ready for the store, or the reason it cannot be taken (a signing failure).
struct CheckedMessage {
  queue::Message message;
  std::string error;  // empty when the message may be stored
};

// Runs the checks and signing `input` asks for on `message`; `done` runs on the loop thread,
// exactly once, with the message to store. Messages that need nothing done are passed on at
// once (synchronously).
void check_message(MessageCheckInput input, queue::Message message,
                   std::function<void(CheckedMessage)> done);

}  // namespace relayq::mta
