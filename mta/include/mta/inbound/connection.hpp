// One accepted SMTP connection: drives a ServerSession over a net::Stream, with its timeout
// timer and its hand-off of complete messages to the store. Loop thread only.
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "dns/resolver.hpp"
#include "metrics/metrics.hpp"
#include "mta/common/recipient_verifier.hpp"
#include "mta/inbound/auth_throttle.hpp"
#include "mta/inbound/client_limits.hpp"
#include "mta/inbound/policy_settings.hpp"
#include "mta/net/loop_thread.hpp"
#include "mta/net/stream.hpp"
#include "mta/net/tls_context.hpp"
#include "mta/smtp/server_session.hpp"
#include "policy/password_checker.hpp"
#include "queue/census.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// What a listener's connections start with. A reload makes new ones; connections keep theirs.
struct ListenerSettings {
  std::shared_ptr<const ServerSessionConfig> session;
  std::shared_ptr<const net::TlsContext> tls;  // null without [tls]
  // [auth] users_file or dovecot; null without either (no AUTH).
  std::shared_ptr<const policy::PasswordChecker> passwords;
  bool implicit_tls = false;    // smtps: TLS from the first byte
  bool proxy_protocol = false;  // a PROXY header names the client before anything else
  std::shared_ptr<const PolicySettings> policy = std::make_shared<PolicySettings>();
  // Per client address, for clients without relay rights.
  ClientLimits::Limits client_limits;
};

// A listener as every loop shares it: its settings and its connection count.
struct ListenerShared {
  std::string name;  // the configured address, used as the metrics label
  std::atomic<std::uint32_t> max_connections{0};
  std::atomic<std::shared_ptr<const ListenerSettings>> settings;
  std::atomic<std::uint32_t> connections{0};
  ClientLimits clients;  // by client address, over every loop
  metrics::Counter* received = nullptr;
  // By reason (metrics::RejectReason as index), made at open so that each exists at zero.
  std::array<metrics::Counter*, metrics::kRejectReasons.size()> rejected{};
};

class InboundConnection;
class ClientChecks;

// What the connections of one loop share: the loop, the store, a read buffer, and the set of
// live connections (for shutdown).
struct InboundContext {
  net::LoopThread* loop = nullptr;
  queue::Store* store = nullptr;
  metrics::Metrics* metrics = nullptr;
  // Hands a stored message to delivery (the engine of the loop that owns its id).
  std::function<void(queue::MessageId)> deliver;
  QueueCensus* census = nullptr;
  AuthThrottle* auth_throttle = nullptr;  // shared by every loop
  // The loop's DNS resolver, for the policy checks (looked up at each use: a reload may
  // replace it).
  std::function<dns::Resolver&()> resolver;
  // Asks our mailbox server whether a recipient exists (for RCPTs the session holds).
  RecipientVerifier* verifier = nullptr;
  std::unordered_set<InboundConnection*> connections;
  bool shutting_down = false;
};

class InboundConnection : public std::enable_shared_from_this<InboundConnection>,
                          public SessionObserver,
                          public net::StreamEvents {
 public:
  // Accepts one pending connection from `server`. Over the listener's limit, the client gets
  // 421 4.3.2 and is closed.
  static void accept(uv_stream_t* server, ListenerShared& listener, InboundContext& context);

  // Stop taking new transactions: idle sessions get 421 now, others after their message.
  void begin_shutdown();
  // The shutdown deadline passed: 421 and close whatever state the session is in.
  void force_shutdown();

  InboundConnection(ListenerShared& listener, InboundContext& context);
  ~InboundConnection() override;

 private:
  void start(bool over_limit);
  void begin_session(PeerInfo peer);
  bool admit_client();
  void read_proxy_header(std::string_view bytes);
  void pump();
  void close();
  void on_stored(queue::MessageId id, const queue::StoreResult& result);
  void arm_timer();
  void handle_closed();
  void start_tls();
  void check_credentials(Credentials credentials);
  void on_checked(const std::string& user, const policy::PasswordCheck& result);
  void check_sender(const SenderCheck& check);
  void verify_recipient(const std::string& recipient);
  void check_and_store(queue::Message message);
  void store(queue::Message message);

  static void on_timer(uv_timer_t* timer);

  void stream_read(std::string_view bytes) override;
  void stream_secured(const TlsInfo& info) override;
  void stream_ended(std::string_view error) override;
  void stream_closed() override;

  void message_accepted(const queue::Envelope& envelope) override;
  void message_rejected(metrics::RejectReason reason) override;
  void state_changed(SessionState from, SessionState to) override;

  ListenerShared& listener_;
  InboundContext& context_;
  std::shared_ptr<const ListenerSettings> settings_;  // as they were when we were accepted
  net::Stream* stream_ = nullptr;                     // frees itself once closed
  uv_timer_t timer_{};
  std::unique_ptr<ServerSession> session_;
  std::shared_ptr<ClientChecks> checks_;     // with [policy] checks of senders
  std::shared_ptr<InboundConnection> self_;  // keeps us alive until the stream and timer closed
  int open_handles_ = 0;
  bool closing_ = false;
  bool counted_ = false;         // holds a slot of listener_.connections
  bool client_counted_ = false;  // holds a slot of listener_.clients for peer_address_
  dns::IpAddress peer_address_;
  std::uint16_t peer_port_ = 0;  // tells this client's sessions apart in the trace
  std::uint64_t store_started_ns_ = 0;
  std::uint64_t handshake_started_ns_ = 0;  // nonzero while a TLS handshake runs
  // Until the PROXY header has come (listeners with proxy_protocol): what came so far, and
  // the connection's own peer, which a LOCAL or UNKNOWN header leaves in place.
  bool awaiting_proxy_ = false;
  std::string proxy_input_;
  PeerInfo connection_peer_;
};

}  // namespace relayq::mta
