// The inbound SMTP dialogue as an I/O-free state machine: bytes in, replies and messages out.
// The host (a socket, or a unit test) feeds received bytes and drains the outputs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dns/ip_address.hpp"
#include "metrics/labels.hpp"
#include "mta/common/recipient_verifier.hpp"
#include "mta/common/tls_info.hpp"
#include "mta/smtp/auth_exchange.hpp"
#include "policy/relay_rules.hpp"
#include "queue/message.hpp"
#include "queue/store.hpp"

namespace relayq::mta {

// What a session needs to know about its listener; shared by every session of that listener.
struct ServerSessionConfig {
  std::string hostname = "localhost";  // banner, EHLO reply, Received: by
  std::string listener_name;           // the listener address, for metrics and the envelope
  std::uint64_t max_message_size = 25ull << 20;
  std::uint64_t max_header_size = 1ull << 20;  // the header section the client sends
  std::uint32_t max_recipients = 1000;
  std::chrono::milliseconds command_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds data_timeout = std::chrono::minutes(3);
  std::uint64_t min_data_rate = 500;  // bytes/s; 0 = off
  std::shared_ptr<const policy::RelayRules> relay;
  // STARTTLS is offered (the host has a certificate) until TLS is up.
  bool starttls = false;
  // AUTH PLAIN and LOGIN are offered (the host has users): under TLS, or also in plaintext
  // when the listener trusts its network that far.
  bool auth = false;
  bool auth_without_tls = false;
  // MAIL needs AUTH first (submission and smtps listeners): 530 5.7.0.
  bool auth_required = false;
  // Failed AUTH attempts after which the session says 421 and closes.
  std::uint32_t max_auth_failures = 3;
  // Replies of 400 or more, and commands that move no mail (NOOP, RSET, VRFY, HELP, EXPN), after
  // which the session says 421 4.7.0 and closes; both counts start over when a message is
  // queued (Postfix's smtpd_hard_error_limit and smtpd_junk_command_limit).
  std::uint32_t max_errors = 20;
  std::uint32_t max_junk_commands = 100;
  // Each MAIL from a client without relay rights (not authenticated, not in relay.networks)
  // waits for the host's checks of the client and sender (reverse DNS, SPF): take_sender_check().
  bool check_senders = false;
  // Recipients in domains the host verifies (RecipientVerifier::verifies) wait for its
  // verdict before their RCPT is answered: take_recipient_check(). Null: none is verified.
  std::function<bool(std::string_view domain)> verifies_recipients;
  std::function<queue::MessageId()> next_id;  // the store's id source
  // The host's wall clock (ms since the epoch): the Received date and the envelope's time.
  std::function<std::int64_t()> wall_clock_ms;
};

struct PeerInfo {
  dns::IpAddress address;
  std::uint16_t port = 0;
};

enum class SessionState {
  greeting,        // banner sent, waiting for HELO/EHLO
  ready,           // greeted, no transaction
  mail,            // MAIL accepted, collecting RCPT
  data,            // reading DATA content
  bdat,            // reading a BDAT chunk
  storing,         // message handed to the store, waiting for message_stored()
  checking,        // MAIL held while the host checks the sender, until sender_checked()
  verifying,       // RCPT held while the host verifies the recipient, until recipient_checked()
  handshake,       // STARTTLS accepted: the host runs the handshake, then tls_established()
  auth,            // AUTH in progress: reading the client's base64 responses
  authenticating,  // credentials with the host, waiting for credentials_checked()
  closed,          // QUIT, timeout or fatal error: flush output and close
};

std::string_view to_string(SessionState state);

// Told about outcomes a dashboard counts (metrics) and a log traces, without the session
// knowing about either.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void message_accepted(const queue::Envelope& envelope) = 0;
  // The reason of a refusal's row in the reply table (smtp/replies.hpp).
  virtual void message_rejected(metrics::RejectReason reason) = 0;
  // Every change of state, as it happens.
  virtual void state_changed(SessionState from, SessionState to) {
    (void)from;
    (void)to;
  }
};

// The host's verdict on credentials from take_credentials().
enum class AuthVerdict {
  accepted,
  rejected,
  throttled,    // too many failures from this client address lately: not even checked
  unavailable,  // could not be checked now (the auth service is down): no failure of the client's
};

// What the host checks before a MAIL is accepted (with check_senders).
struct SenderCheck {
  std::string sender;  // the reverse path, empty for <>
  std::string helo;    // the HELO/EHLO argument
};

// The host's verdict on a SenderCheck. Each refusal has its row in the reply table.
enum class SenderVerdict {
  accepted,
  spf_failed,      // 550 5.7.23: the sender's domain says this client may not send for it
  spf_temporary,   // 451 4.7.24: the SPF check could not complete
  rdns_failed,     // 550 5.7.25: no name of the client's address forward-confirms
  rdns_temporary,  // 450 4.7.25: the reverse DNS lookup failed temporarily
};

class ServerSession {
 public:
  ServerSession(std::shared_ptr<const ServerSessionConfig> config, PeerInfo peer,
                SessionObserver* observer = nullptr);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Queues the 220 banner. `now_ms` is a monotonic clock, used for timeouts only.
  void start(std::int64_t now_ms);
  // Processes received bytes as far as possible. Stops early, keeping the rest buffered,
  // when a complete message has been handed out through take_message().
  void receive(std::string_view bytes, std::int64_t now_ms);
  // The store's verdict on the message taken with take_message(); replies 250 or 4xx and
  // goes on with any pipelined input that arrived meanwhile.
  void message_stored(const queue::StoreResult& result, std::int64_t now_ms);
  // The TLS handshake after take_starttls() (or at the start, for smtps) completed: the
  // session starts over, waiting for EHLO (RFC 3207 4.2), and records TLS in Received:.
  void tls_established(const TlsInfo& info, std::int64_t now_ms);
  // The verdict on the credentials taken with take_credentials(); replies 235, 535 or 454
  // (421 and closing after too many failures; unavailable counts as none) and goes on with
  // pipelined input.
  void credentials_checked(AuthVerdict verdict, std::int64_t now_ms);
  // The verdict on the sender taken with take_sender_check(): 250 to the MAIL, or the refusal
  // with `detail` in its text (the SPF explanation, the client's address); then pipelined
  // input goes on.
  void sender_checked(SenderVerdict verdict, std::string_view detail, std::int64_t now_ms);
  // The verdict on the recipient taken with take_recipient_check(): 250 to the RCPT, or its
  // refusal (550 5.1.1, 450 4.2.0, 451 4.4.3); then pipelined input goes on.
  void recipient_checked(RecipientVerdict verdict, std::int64_t now_ms);
  // deadline_ms() has passed: replies 421 and closes.
  void timed_out(std::int64_t now_ms);
  // The daemon is stopping: replies 421 4.3.2 (unless a store is in flight) and closes.
  void shut_down();

  // Outputs, drained by the host after every call above.
  std::string take_output();
  std::optional<queue::Message> take_message();
  // True once, after the 220 to STARTTLS: the host writes take_output() in plaintext, then
  // starts the server handshake on its stream.
  bool take_starttls();
  // Once, when an AUTH exchange has produced credentials for the host to check.
  std::optional<Credentials> take_credentials();
  // Once, when a MAIL waits for the host's checks (state checking).
  std::optional<SenderCheck> take_sender_check();
  // Once, when a RCPT waits for the host's verdict (state verifying): the recipient.
  std::optional<std::string> take_recipient_check();
  // The user AUTH proved, or empty.
  const std::string& authenticated_user() const;
  // The client may relay (authenticated, or in relay.networks): its mail is ours to sign, not
  // a stranger's to check.
  bool has_relay_rights() const;
  SessionState state() const;
  bool closed() const { return state() == SessionState::closed; }
  // Monotonic time by which more input must arrive (command and data timeouts, minimum data
  // rate). Meaningless while the host has the next step (storing, checking, verifying,
  // authenticating) or
  // closed.
  std::int64_t deadline_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::mta
