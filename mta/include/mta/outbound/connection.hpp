// One outbound SMTP (or LMTP) connection to a destination: tries its next hops in order (or
// its unix socket) until one greets us, then carries transactions one after another (reuse) until
// told to quit. Each hop is tried over a net::Stream of its own. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns/nexthop.hpp"
#include "mta/net/stream.hpp"
#include "mta/net/tls_context.hpp"
#include "mta/smtp/client_session.hpp"
#include "queue/message.hpp"

namespace relayq::mta {

// The recipients of one message that go to one destination: what a transaction carries.
struct Job {
  queue::MessageId id = 0;
  std::vector<std::uint16_t> recipients;  // indexes into the envelope's recipients
  std::uint64_t started_ns = 0;           // uv_hrtime() when the transaction began
};

class OutboundConnection;

// The engine's side of a connection's life.
class ConnectionEvents {
 public:
  virtual ~ConnectionEvents() = default;
  // Greeted and idle: send() a job, or idle_until_closed().
  virtual void connection_ready(OutboundConnection& connection) = 0;
  virtual void transaction_done(OutboundConnection& connection, Job job,
                                const TransactionResult& result) = 0;
  // No next hop could be reached or would greet us; `reason` is the last failure.
  virtual void connection_failed(OutboundConnection& connection, const SmtpReply& reason) = 0;
  // Every handle is closed: the engine may now destroy the connection.
  virtual void connection_closed(OutboundConnection& connection) = 0;
  // A STARTTLS handshake with the next hop ended (for the metrics).
  virtual void tls_handshake_done(OutboundConnection& connection, bool ok) {
    (void)connection;
    (void)ok;
  }
};

// What a connection needs for STARTTLS; the policy itself is in the session's config.
struct OutboundTls {
  std::shared_ptr<const net::TlsContext> context;  // null when the policy is off
  net::TlsSessionCache* sessions = nullptr;        // the loop's, to resume sessions with
  // Opportunistic TLS whose handshake failed: the same hop once more, with this (tls = off),
  // since plaintext was acceptable anyway (RFC 7435). Null for the other policies.
  std::shared_ptr<const ClientSessionConfig> plaintext_fallback;
};

struct OutboundTimeouts {
  std::int64_t connect_ms = 30'000;  // per next hop
  std::int64_t idle_ms = 5'000;      // an idle connection is closed after this
};

class OutboundConnection : private net::StreamEvents {
 public:
  // Tries `hops` in order; or, when `unix_path` is set, that unix socket alone (LMTP to a
  // mailbox server on this machine; `hops` is then ignored).
  OutboundConnection(uv_loop_t* loop, ConnectionEvents& events, std::string destination,
                     std::vector<dns::NextHop> hops, std::string unix_path,
                     std::shared_ptr<const ClientSessionConfig> session_config,
                     OutboundTimeouts timeouts, OutboundTls tls = {});
  ~OutboundConnection() override;
  OutboundConnection(const OutboundConnection&) = delete;
  OutboundConnection& operator=(const OutboundConnection&) = delete;

  void start();
  // Starts a transaction; only after connection_ready().
  void send(Job job, OutboundMessage message);
  // Nothing to do now: QUIT after the idle timeout unless send() comes first.
  void idle_until_closed();
  // QUIT now (if idle) and close after its reply.
  void quit();
  // The daemon is stopping: QUIT if idle (without waiting for the reply) and close now.
  void shut_down();

  // Greeted, no transaction in progress, still open: send() may be called.
  bool idle() const;
  const std::string& destination() const { return destination_; }
  // Transactions begun on it (for max_messages_per_connection).
  std::uint32_t transactions() const { return transactions_; }
  // "mx1.example.org[192.0.2.1]:25" for the hop in use: attempt history and logs.
  std::string nexthop() const;
  const std::string& remote_host() const;
  // How the current hop is protected, for the attempt history: "TLSv1.3 CIPHER verified" (or
  // "unverified", and "resumed" when the session was), empty for plaintext.
  const std::string& tls_summary() const { return tls_summary_; }

 private:
  void connect_next_hop();
  void connect_hop();
  void start_tls();
  void hop_failed(const SmtpReply& reason);
  void close_stream();
  void pump();
  void write(std::string data);
  void arm_timer(std::int64_t delay_ms);
  void close();
  void handle_closed();
  std::int64_t now_ms() const;

  static void on_timer(uv_timer_t* timer);

  void stream_connected(int status) override;
  void stream_read(std::string_view bytes) override;
  void stream_secured(const TlsInfo& info) override;
  void stream_written() override;
  void stream_ended(std::string_view error) override;
  void stream_closed() override;

  uv_loop_t* loop_;
  ConnectionEvents& events_;
  std::string destination_;
  std::vector<dns::NextHop> hops_;
  std::size_t hop_ = 0;
  std::string unix_path_;
  std::shared_ptr<const ClientSessionConfig> session_config_;
  OutboundTimeouts timeouts_;
  OutboundTls tls_;
  bool handshaking_ = false;       // a STARTTLS handshake is under way
  bool handshake_failed_ = false;  // on this hop
  bool plaintext_retry_ = false;   // this hop again, without TLS
  std::string tls_summary_;        // the current hop's, once TLS is up
  std::unique_ptr<ClientSession> session_;
  net::Stream* stream_ = nullptr;  // the current hop's; closes and frees itself
  bool connected_ = false;         // stream_ is connected
  uv_timer_t timer_{};
  std::optional<Job> job_;
  SmtpReply last_failure_{0, "no next hop"};
  bool ready_ = false;
  bool closing_ = false;
  bool idle_wait_ = false;
  int open_handles_ = 0;  // the timer, plus each stream still open
  std::uint32_t transactions_ = 0;
};

}  // namespace relayq::mta
