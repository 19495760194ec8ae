// The server session's message content: DATA and BDAT bytes into the body, the verdict on
// them, and the hand-off of a complete message to the store. The session's thread only; the
// body is built in place, once, Received header first.
#include <algorithm>

#include "mta/smtp/received_header.hpp"
#include "smtp/server_session_impl.hpp"

namespace relayq::mta {

namespace {

Reply refusal_for(Fault fault) {
  switch (fault) {
    case Fault::too_big:
      return Reply::message_too_big;
    case Fault::header_too_big:
      return Reply::header_too_big;
    case Fault::line_too_long:
      return Reply::text_line_too_long;
    case Fault::none:
    case Fault::bad_bytes:
      break;
  }
  return Reply::bad_data;
}

}  // namespace

// --- Content -----------------------------------------------------------------------------

// The message id and the trace header are fixed when content starts, so that the body is
// built in place, header first, without being copied afterwards.
void ServerSession::Impl::start_content(Framing framing) {
  tx.id = config->next_id();
  tx.received_ms = config->wall_clock_ms();
  tx.chunked = framing == Framing::counted;
  const std::string protocol_name = protocol();
  const ReceivedTrace trace{
      .helo = helo,
      .client = peer.address,
      .hostname = config->hostname,
      .protocol = protocol_name,
      .tls = tls ? &*tls : nullptr,
      .id = tx.id,
      .recipient = tx.recipients.size() == 1 ? std::string_view(tx.recipients.front()) : "",
      .time_ms = tx.received_ms,
  };
  tx.content.emplace(framing, format_received(trace), config->max_message_size, tx.declared_size,
                     config->max_header_size);
}

std::size_t ServerSession::Impl::read_data(std::string_view bytes) {
  const std::size_t used = tx.content->feed(bytes);
  data_bytes += used;
  if (tx.content->ended()) end_data();
  return used;
}

std::size_t ServerSession::Impl::read_chunk(std::string_view bytes) {
  const std::size_t used =
      static_cast<std::size_t>(std::min<std::uint64_t>(chunk.remaining, bytes.size()));
  if (!chunk.refusal) tx.content->feed(bytes.substr(0, used));
  chunk.remaining -= used;
  data_bytes += used;
  if (chunk.remaining == 0) end_chunk();
  return used;
}

void ServerSession::Impl::end_data() {
  last_command_ms = now_ms;
  if (tx.content->fault() != Fault::none) return refuse_content(tx.content->fault());
  hand_off_message();
}

void ServerSession::Impl::end_chunk() {
  last_command_ms = now_ms;
  if (chunk.refusal) {
    reply(*chunk.refusal);
    return reset_transaction();
  }
  if (chunk.last) tx.content->finish();
  if (tx.content->fault() != Fault::none) return refuse_content(tx.content->fault());
  if (chunk.last) return hand_off_message();
  enter_state(SessionState::mail);
  reply(Reply::chunk_received, std::to_string(chunk.size));
}

void ServerSession::Impl::refuse_content(Fault fault) {
  reset_transaction();
  refuse(refusal_for(fault));
}

void ServerSession::Impl::hand_off_message() {
  queue::Message ready;
  queue::Envelope& envelope = ready.envelope;
  envelope.id = tx.id;
  envelope.sender = tx.sender;
  envelope.recipients.resize(tx.recipients.size());
  for (std::size_t i = 0; i < tx.recipients.size(); ++i)
    envelope.recipients[i].address = std::move(tx.recipients[i]);
  envelope.received_ms = tx.received_ms;
  envelope.listener = config->listener_name;
  envelope.client_address = peer.address.to_string();
  envelope.helo = helo;
  envelope.eight_bit_mime = tx.eight_bit_mime;
  envelope.smtputf8 = tx.smtputf8;
  ready.body = tx.content->take_body();
  envelope.size = ready.body.size();
  stored_envelope = envelope;
  message = std::move(ready);
  enter_state(SessionState::storing);
}

}  // namespace relayq::mta
