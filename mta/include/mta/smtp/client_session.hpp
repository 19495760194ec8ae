// The outbound SMTP (or LMTP) dialogue as an I/O-free state machine: the host connects, feeds the
// server's bytes in, writes what the session emits, and hands it messages one at a time. The
// host runs the TLS handshake when the session asks for it (STARTTLS). Not thread-safe: one
// session per connection, used on that connection's loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relayq::mta {

struct SmtpReply {
  // 0 when no reply came (connection lost, timeout, protocol error). A local refusal (SIZE,
  // SMTPUTF8) carries the code it stands for, so that it bounces like the server's would.
  int code = 0;
  std::string text;  // the whole reply, lines joined by "\n", without CRLF; or our own reason
  bool permanent() const { return code >= 500; }
  bool success() const { return code >= 200 && code < 300; }
};

// How the client treats TLS to the next hop ([delivery] tls, or a route's override).
enum class TlsPolicy {
  off,            // never STARTTLS, even when offered
  opportunistic,  // STARTTLS when offered; plaintext when not offered or refused
  required,       // STARTTLS or no delivery: a hop without it is a temporary failure
};

std::string_view to_string(TlsPolicy policy);

struct ClientSessionConfig {
  std::string helo_name = "localhost";  // our hostname, for EHLO/HELO (LHLO)
  // LMTP (RFC 2033) instead of SMTP: LHLO with no HELO fallback, and after the end of data one
  // reply per recipient the server accepted at RCPT, each deciding that recipient's fate.
  bool lmtp = false;
  TlsPolicy tls = TlsPolicy::off;  // STARTTLS to the next hop
  // RFC 5321 4.5.3.2 client timeouts.
  std::chrono::milliseconds greeting_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds command_timeout = std::chrono::minutes(5);  // EHLO, MAIL, RCPT, RSET
  std::chrono::milliseconds data_init_timeout = std::chrono::minutes(2);
  std::chrono::milliseconds data_block_timeout = std::chrono::minutes(3);
  std::chrono::milliseconds data_end_timeout = std::chrono::minutes(10);
};

// One message for one connection: the recipients of one destination.
struct OutboundMessage {
  std::string sender;  // "" for the null sender
  std::vector<std::string> recipients;
  std::shared_ptr<const std::string> body;  // CRLF lines, not dot-stuffed (as stored)
  bool eight_bit_mime = false;
  bool smtputf8 = false;  // the message needs SMTPUTF8 (non-ASCII addresses or headers)
  // Only ask: MAIL and RCPT, no content; each recipient's result is its RCPT reply, 2xx
  // included (whether a mailbox server knows a user), and the next transaction starts with
  // RSET.
  bool probe = false;
};

// The fate of each recipient of an OutboundMessage, in order: its RCPT reply when that was not
// 2xx, else the reply to the end of data (its own reply there, over LMTP), or MAIL's reply when
// MAIL failed.
struct TransactionResult {
  std::vector<SmtpReply> recipients;
};

// What the server announced in its EHLO reply; all false after a HELO fallback. Once TLS is
// up, what it announced in its EHLO reply over TLS (RFC 3207 4.2).
struct ServerExtensions {
  bool pipelining = false;
  bool size = false;                        // MAIL may carry SIZE=
  std::optional<std::uint64_t> size_limit;  // SIZE's fixed maximum; none when absent or 0
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool enhanced_status_codes = false;
  bool chunking = false;
  bool starttls = false;
};

enum class ClientState {
  connecting,     // waiting for the 220 greeting
  greeting,       // EHLO (or HELO fallback), STARTTLS, or EHLO again over TLS in progress
  tls_handshake,  // STARTTLS accepted: the host runs the TLS handshake
  idle,           // ready for send()
  busy,           // a transaction is in progress
  quitting,       // QUIT sent
  closed,         // the host should close the connection
};

std::string_view to_string(ClientState state);

class ClientSession {
 public:
  explicit ClientSession(std::shared_ptr<const ClientSessionConfig> config);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Told every change of state as it happens (the host logs it at level debug).
  using StateTrace = std::function<void(ClientState from, ClientState to)>;
  void set_trace(StateTrace trace);

  // The TCP connection is up; now_ms is a monotonic clock for deadlines.
  void connected(std::int64_t now_ms);
  void receive(std::string_view bytes, std::int64_t now_ms);
  // Starts a transaction; only in state idle (in any other state its result is at once a code
  // 0 reply for every recipient). RSET first when the previous one was cut short.
  void send(OutboundMessage message, std::int64_t now_ms);
  // Sends QUIT (from idle) and closes after its reply or at once otherwise.
  void quit(std::int64_t now_ms);
  // The socket failed or closed, or deadline_ms() passed: the transaction in progress (if any)
  // ends with code 0 replies for its recipients, and the session is closed. timed_out() before
  // deadline_ms() (a stale timer) is ignored.
  void connection_lost(std::string_view reason);
  void timed_out(std::int64_t now_ms);

  // A write of a non-empty take_output() string completed: call once per such string. It
  // refreshes the data block timeout while the content goes out, and starts the end of data
  // timeout once all of it is written.
  void output_written(std::int64_t now_ms);

  // STARTTLS (RFC 3207). True once, when the server has accepted STARTTLS (220): the host now
  // starts the TLS handshake on its stream (after writing any take_output(), which is empty
  // then), and then calls tls_established() or tls_failed(). Until then receive() discards
  // what it is given: plaintext sent after the 220 must not be read as a reply over TLS. The
  // handshake is timed by deadline_ms() (the 220's arrival + command_timeout).
  bool take_starttls();
  // The handshake completed: the session greets again with EHLO (RFC 3207 4.2: forget what
  // the server said before TLS).
  void tls_established(std::int64_t now_ms);
  // The handshake failed: the session closes, setup_failure() saying so (code 0: temporary,
  // the host tries the next hop). No output.
  void tls_failed(std::string_view reason);
  // TLS is up on this connection.
  bool tls_active() const;

  // Outputs, drained by the host after every call. Output taken after the session closed
  // (a polite QUIT) is still to be written before closing.
  std::string take_output();
  std::optional<TransactionResult> take_result();
  ClientState state() const;
  bool closed() const { return state() == ClientState::closed; }
  // Monotonic time by which the awaited reply (or the content's write) must come; none (the
  // maximum) while idle, closed, or before connected(): the host times idleness and connecting.
  std::int64_t deadline_ms() const;
  // Why the session closed before it became idle (greeting 421/5xx, EHLO and HELO refused),
  // for trying the next MX host; code 0 when it was a connection failure, or TLS required but
  // not had (not offered, STARTTLS refused, the handshake failed or timed out).
  const std::optional<SmtpReply>& setup_failure() const;
  // Extensions the server announced (over TLS, once TLS is active).
  const ServerExtensions& extensions() const;
  bool pipelining() const;
  std::optional<std::uint64_t> size_limit() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayq::mta
