// The server session's state, shared by the files that implement it: server_session.cpp
// (input, state, results, the public API), server_session_commands.cpp (the command table and
// one handler per command) and server_session_content.cpp (DATA and BDAT content, the hand-off
// to the store). The session's thread only, whichever the host runs it on; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/smtp/content_reader.hpp"
#include "mta/smtp/replies.hpp"
#include "mta/smtp/server_session.hpp"
#include "smtp/commands.hpp"

namespace relayq::mta {

using Fault = ContentReader::Fault;
using Framing = ContentReader::Framing;

struct ServerSession::Impl {
  // A MAIL transaction, from MAIL to the hand-off of its message or its refusal.
  struct Transaction {
    std::string sender;
    std::vector<std::string> recipients;
    std::uint64_t declared_size = 0;  // SIZE=, to size the body buffer
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool chunked = false;  // the content comes by BDAT
    queue::MessageId id = 0;
    std::int64_t received_ms = 0;
    std::optional<ContentReader> content;  // from DATA or the first BDAT on
    std::string verifying;                 // the RCPT held in state verifying
  };

  // The BDAT chunk being read.
  struct Chunk {
    std::uint64_t size = 0;
    std::uint64_t remaining = 0;
    bool last = false;
    std::optional<Reply> refusal;  // replied once the octets are read, when they are not taken
  };

  Impl(std::shared_ptr<const ServerSessionConfig> config, PeerInfo peer, SessionObserver* observer)
      : config(std::move(config)), peer(peer), observer(observer) {}

  // Input.
  void receive(std::string_view bytes);
  void drain_buffer();
  std::size_t run(std::string_view input);
  void on_frame(const CommandFramer::Frame& frame);
  void dispatch(std::string_view line);
  std::optional<Reply> sequence_error(std::uint8_t flags) const;

  // Command handlers, one per row of kCommands.
  void on_ehlo(std::string_view argument);
  void on_helo(std::string_view argument);
  void on_mail(std::string_view argument);
  void on_rcpt(std::string_view argument);
  void on_data(std::string_view argument);
  void on_bdat(std::string_view argument);
  void on_rset(std::string_view argument);
  void on_noop(std::string_view argument);
  void on_quit(std::string_view argument);
  void on_vrfy(std::string_view argument);
  void on_starttls(std::string_view argument);
  void on_auth(std::string_view argument);
  void on_help(std::string_view argument);
  void on_not_implemented(std::string_view argument);

  // STARTTLS and AUTH.
  void auth_response(const CommandFramer::Frame& frame);
  void auth_step(AuthExchange::Step step);
  void checked(AuthVerdict verdict);
  bool auth_offered() const;

  // The host's checks of a sender.
  bool has_relay_rights() const;
  void sender_verdict(SenderVerdict verdict, std::string_view detail);
  void recipient_verdict(RecipientVerdict verdict);

  // Content.
  void start_content(Framing framing);
  std::size_t read_data(std::string_view input);
  std::size_t read_chunk(std::string_view input);
  void end_data();
  void end_chunk();
  void refuse_content(Fault fault);
  void hand_off_message();

  // Results and state.
  void stored(const queue::StoreResult& result);
  void reset_transaction();
  void enter_state(SessionState next);
  void close_with(Reply reply, std::string_view argument = {});
  void reply(Reply reply, std::string_view argument = {});
  void refuse(Reply reply);
  void count_refusal(Reply reply);  // a refusal's row names its metric reason
  void line(std::string_view text);
  bool greeted() const { return !helo.empty(); }
  std::string protocol() const;
  // Storing a message, checking a sender or credentials: input waits, and the host's answer
  // ends it.
  bool waiting_for_host() const {
    return state == SessionState::storing || state == SessionState::authenticating ||
           state == SessionState::checking || state == SessionState::verifying;
  }

  static const std::array<CommandSpec<Impl>, 14> kCommands;

  std::shared_ptr<const ServerSessionConfig> config;
  PeerInfo peer;
  SessionObserver* observer;

  SessionState state = SessionState::greeting;
  std::string helo;  // empty until HELO/EHLO
  bool esmtp = false;
  Transaction tx;
  Chunk chunk;
  CommandFramer framer;
  std::string input;  // received, not yet processed
  std::string output;
  std::optional<queue::Message> message;           // until take_message()
  std::optional<queue::Envelope> stored_envelope;  // until message_stored(), for the observer
  bool shutdown_requested = false;                 // shut_down() while storing or authenticating
  bool input_follows = false;  // more input follows the command being dispatched (pipelined)
  std::size_t bytes_after_buffer = 0;  // received, not yet looked at, while `input` is drained

  std::optional<TlsInfo> tls;       // once the handshake completed
  bool starttls_requested = false;  // until take_starttls()
  std::optional<AuthExchange> auth_exchange;
  std::optional<Credentials> credentials;      // until take_credentials()
  std::optional<SenderCheck> sender_check;     // until take_sender_check()
  std::optional<std::string> recipient_check;  // until take_recipient_check()
  std::string auth_user;                       // while authenticating, then once authenticated
  bool authenticated = false;
  std::uint32_t auth_failures = 0;
  std::uint32_t errors = 0;         // 4xx and 5xx replies since the last message queued
  std::uint32_t junk_commands = 0;  // kJunk commands since the last message queued

  std::int64_t now_ms = 0;
  std::int64_t last_command_ms = 0;
  std::int64_t data_start_ms = 0;
  std::int64_t last_input_ms = 0;
  std::uint64_t data_bytes = 0;  // read since data_start_ms
};

}  // namespace relayq::mta
