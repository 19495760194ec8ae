// The server session's commands: the table of RFC 5321's verbs with their sequencing rules,
// and one handler per command. The session's thread only; replies are queued in the output.
#include <algorithm>
#include <charconv>
#include <limits>

#include "mta/common/ascii.hpp"
#include "mta/smtp/path_argument.hpp"
#include "smtp/server_session_impl.hpp"

namespace relayq::mta {

namespace {

// SIZE=n (RFC 1870): digits; a number too large for 64 bits is simply too large.
std::optional<std::uint64_t> parse_size_param(std::string_view value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), is_digit)) return std::nullopt;
  std::uint64_t size = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), size);
  return error == std::errc() ? size : std::numeric_limits<std::uint64_t>::max();
}

}  // namespace

// Sequencing (RFC 5321 4.1.4) as data. BDAT's octets must be read whatever the verdict, so
// on_bdat checks its sequencing itself once it knows how many there are.
const std::array<CommandSpec<ServerSession::Impl>, 14> ServerSession::Impl::kCommands = {{
    {"EHLO", &Impl::on_ehlo, kNeedsArgument, "EHLO hostname"},
    {"HELO", &Impl::on_helo, kNeedsArgument, "HELO hostname"},
    {"MAIL", &Impl::on_mail, kNeedsGreeting | kNotInMail | kNeedsArgument, "MAIL FROM:<address>"},
    {"RCPT", &Impl::on_rcpt, kNeedsGreeting | kNeedsMail | kNeedsArgument, "RCPT TO:<address>"},
    {"DATA", &Impl::on_data, kNeedsGreeting | kNeedsMail | kNoArgument, "DATA"},
    {"BDAT", &Impl::on_bdat, 0, "BDAT size [LAST]"},
    // Postfix's junk commands, and HELP and EXPN: a client that only sends these holds a
    // connection without sending mail.
    {"RSET", &Impl::on_rset, kNoArgument | kJunk, "RSET"},
    {"NOOP", &Impl::on_noop, kJunk, ""},
    {"QUIT", &Impl::on_quit, 0, ""},
    {"VRFY", &Impl::on_vrfy, kNeedsArgument | kJunk, "VRFY address"},
    {"HELP", &Impl::on_help, kJunk, ""},
    {"EXPN", &Impl::on_not_implemented, kJunk, ""},
    // RFC 3207 4: after EHLO, outside a transaction; whatever follows it is checked in
    // on_starttls (nothing may be pipelined after it).
    {"STARTTLS", &Impl::on_starttls, kNeedsGreeting | kNotInMail | kNoArgument, "STARTTLS"},
    // RFC 4954 4: after EHLO, not within a transaction.
    {"AUTH", &Impl::on_auth, kNeedsGreeting | kNotInMail | kNeedsArgument,
     "AUTH mechanism [initial-response]"},
}};

// --- Commands ----------------------------------------------------------------------------

void ServerSession::Impl::on_ehlo(std::string_view argument) {
  helo = argument.substr(0, argument.find(' '));
  esmtp = true;
  reset_transaction();
  const std::string& host = config->hostname;
  line("250-" + host);
  line("250-PIPELINING");
  line("250-SIZE " + std::to_string(config->max_message_size));
  line("250-8BITMIME");
  line("250-SMTPUTF8");
  line("250-ENHANCEDSTATUSCODES");
  line("250-CHUNKING");
  if (config->starttls && !tls) line("250-STARTTLS");
  if (auth_offered()) {
    output.append("250-AUTH ");
    line(kAuthMechanisms);
  }
  line("250 HELP");
}

void ServerSession::Impl::on_helo(std::string_view argument) {
  helo = argument.substr(0, argument.find(' '));
  esmtp = false;
  reset_transaction();
  reply(Reply::helo, config->hostname);
}

void ServerSession::Impl::on_mail(std::string_view argument) {
  if (config->auth_required && !authenticated) return refuse(Reply::auth_required);
  const PathArgument path = parse_path_argument(argument, "FROM", true);
  if (path.status == PathStatus::bad_syntax) return reply(Reply::syntax, "MAIL FROM:<address>");
  if (path.status != PathStatus::ok) return reply(Reply::bad_sender);
  Transaction next;
  for (const EsmtpParam& param : path.params) {
    // Parameters belong to the extensions announced by EHLO (RFC 5321 4.1.4).
    const std::string_view keyword = esmtp ? param.keyword : std::string_view();
    if (equals_ignore_case(keyword, "SIZE")) {
      const auto size = parse_size_param(param.value);
      if (!size) return reply(Reply::bad_size_parameter);
      next.declared_size = *size;
    } else if (equals_ignore_case(keyword, "BODY")) {
      if (equals_ignore_case(param.value, "8BITMIME")) {
        next.eight_bit_mime = true;
      } else if (!equals_ignore_case(param.value, "7BIT")) {
        return reply(Reply::bad_body_parameter);
      }
    } else if (equals_ignore_case(keyword, "SMTPUTF8")) {
      if (param.has_value) return reply(Reply::bad_smtputf8_parameter);
      next.smtputf8 = true;
    } else if (equals_ignore_case(keyword, "AUTH") && config->auth) {
      // RFC 4954 5: the submitter's identity claimed by an earlier hop. We trust none and
      // pass none on (as AUTH=<> would say), so it is accepted and dropped.
    } else {
      return reply(Reply::unsupported_option, param.keyword);
    }
  }
  if (next.declared_size > config->max_message_size) return refuse(Reply::message_too_big);
  if (path.non_ascii && !next.smtputf8) return reply(Reply::needs_smtputf8);
  next.sender = path.mailbox;
  tx = std::move(next);
  // Clients with relay rights are ours: their mail is not checked like a stranger's.
  if (config->check_senders && !has_relay_rights()) {
    sender_check = SenderCheck{tx.sender, helo};
    return enter_state(SessionState::checking);
  }
  enter_state(SessionState::mail);
  reply(Reply::sender_ok);
}

void ServerSession::Impl::on_rcpt(std::string_view argument) {
  if (tx.chunked) return reply(Reply::rcpt_after_bdat);
  const PathArgument path = parse_path_argument(argument, "TO", false);
  switch (path.status) {
    case PathStatus::ok:
      break;
    case PathStatus::bad_syntax:
      return reply(Reply::syntax, "RCPT TO:<address>");
    case PathStatus::bad_path:
      return reply(Reply::bad_recipient);
    case PathStatus::no_domain:
      return reply(Reply::recipient_needs_domain);
  }
  if (!path.params.empty()) return reply(Reply::unsupported_option, path.params.front().keyword);
  if (path.non_ascii && !tx.smtputf8) return reply(Reply::needs_smtputf8);
  if (std::find(tx.recipients.begin(), tx.recipients.end(), path.mailbox) != tx.recipients.end())
    return reply(Reply::recipient_ok);  // a duplicate: delivered once
  if (tx.recipients.size() >= config->max_recipients) return refuse(Reply::too_many_recipients);
  // No relay rules at all means nobody may relay: fail closed.
  if (!config->relay || !config->relay->may_send(peer.address, authenticated, path.domain))
    return refuse(Reply::relay_denied);
  const std::string_view local_part =
      std::string_view(path.mailbox).substr(0, path.mailbox.rfind('@'));
  if (!config->relay->may_route(peer.address, authenticated, local_part))
    return refuse(Reply::routing_denied);
  if (config->verifies_recipients && config->verifies_recipients(path.domain)) {
    tx.verifying = path.mailbox;
    recipient_check = path.mailbox;
    return enter_state(SessionState::verifying);
  }
  tx.recipients.push_back(path.mailbox);
  reply(Reply::recipient_ok);
}

void ServerSession::Impl::on_data(std::string_view) {
  if (tx.chunked) return reply(Reply::data_after_bdat);
  if (tx.recipients.empty()) return reply(Reply::no_recipients);
  start_content(Framing::dot_terminated);
  enter_state(SessionState::data);
  reply(Reply::start_data);
}

void ServerSession::Impl::on_bdat(std::string_view argument) {
  const auto bdat = parse_bdat_argument(argument);
  // Without a valid count the octets that follow cannot be told from commands.
  if (!bdat) return close_with(Reply::syntax, "BDAT size [LAST]");
  chunk = Chunk{bdat->size, bdat->size, bdat->last, sequence_error(kNeedsGreeting | kNeedsMail)};
  if (!chunk.refusal && tx.recipients.empty()) chunk.refusal = Reply::no_recipients;
  if (!chunk.refusal && !tx.content) start_content(Framing::counted);
  enter_state(SessionState::bdat);
  if (chunk.remaining == 0) end_chunk();
}

void ServerSession::Impl::on_rset(std::string_view) {
  reset_transaction();
  reply(Reply::ok);
}

void ServerSession::Impl::on_noop(std::string_view) {
  reply(Reply::ok);
}

void ServerSession::Impl::on_quit(std::string_view) {
  close_with(Reply::bye);
}

void ServerSession::Impl::on_vrfy(std::string_view) {
  reply(Reply::cannot_vrfy);
}

void ServerSession::Impl::on_help(std::string_view) {
  std::string verbs;
  for (const auto& spec : kCommands) {
    // Only what this session offers.
    if (spec.handle == &Impl::on_not_implemented ||
        (spec.handle == &Impl::on_starttls && !config->starttls) ||
        (spec.handle == &Impl::on_auth && !config->auth))
      continue;
    verbs += ' ';
    verbs += spec.verb;
  }
  reply(Reply::help, verbs);
}

void ServerSession::Impl::on_not_implemented(std::string_view) {
  reply(Reply::not_implemented);
}

// --- STARTTLS and AUTH -------------------------------------------------------------------

void ServerSession::Impl::on_starttls(std::string_view) {
  if (!config->starttls && !tls) return reply(Reply::not_implemented);
  if (tls) return reply(Reply::tls_active);
  // Bytes after STARTTLS in the same read arrived before any TLS and would be taken as if
  // they came over it (CVE-2011-0411). A client that pipelines STARTTLS breaks RFC 3207 4:
  // refuse, and close, so that nothing of what it sent is ever run.
  if (input_follows) return close_with(Reply::starttls_pipelined);
  reply(Reply::starttls_ready);
  starttls_requested = true;
  enter_state(SessionState::handshake);
}

bool ServerSession::Impl::auth_offered() const {
  return config->auth && (tls || config->auth_without_tls);
}

void ServerSession::Impl::on_auth(std::string_view argument) {
  if (!config->auth) return reply(Reply::not_implemented);
  if (authenticated) return reply(Reply::already_authenticated);
  if (!auth_offered()) return reply(Reply::auth_needs_tls);
  const std::size_t space = argument.find(' ');
  auto exchange = AuthExchange::start(argument.substr(0, space));
  if (!exchange) return reply(Reply::auth_unknown_mechanism);
  std::optional<std::string_view> initial;
  if (space != std::string_view::npos)
    initial = argument.substr(argument.find_first_not_of(' ', space));
  auth_exchange = std::move(exchange);
  auth_step(auth_exchange->begin(initial));
}

void ServerSession::Impl::auth_response(const CommandFramer::Frame& frame) {
  last_command_ms = now_ms;
  if (frame.outcome != CommandFramer::Outcome::line) {
    auth_exchange.reset();
    enter_state(greeted() ? SessionState::ready : SessionState::greeting);
    return reply(frame.outcome == CommandFramer::Outcome::too_long ? Reply::line_too_long
                                                                   : Reply::malformed_line);
  }
  auth_step(auth_exchange->respond(frame.line));
}

void ServerSession::Impl::auth_step(AuthExchange::Step step) {
  switch (step.kind) {
    case AuthExchange::Step::Kind::challenge:
      enter_state(SessionState::auth);
      return reply(Reply::auth_challenge, step.challenge);
    case AuthExchange::Step::Kind::credentials:
      auth_exchange.reset();
      auth_user = step.credentials.user;
      credentials = std::move(step.credentials);
      return enter_state(SessionState::authenticating);
    case AuthExchange::Step::Kind::refused:
      auth_exchange.reset();
      enter_state(SessionState::ready);
      return reply(step.refusal);
  }
}

}  // namespace relayq::mta
