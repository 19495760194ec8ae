// Envelope <-> bytes: MessagePack with short field names, as stored in the "envelopes" family.
// Used by the store; public so that tests and the fuzz target can feed it any record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "queue/message.hpp"

namespace relayq::queue {

// Written into every record as "v". Raise it when a field changes meaning; a decoder refuses
// records from a newer version instead of misreading them. Added fields with defaults need no
// raise: absent fields decode to the Envelope's defaults.
inline constexpr std::uint32_t kEnvelopeFormatVersion = 1;

std::string encode_envelope(const Envelope& envelope);

struct DecodedEnvelope {
  std::optional<Envelope> envelope;  // empty when the bytes were not a valid record
  std::string error;                 // why, for the log
};

// Never throws: malformed bytes, wrong field types, unknown versions, a field given twice and
// times outside 1970..9999 (which no clock wrote, and which would overflow when delivery adds
// to them) become `error`.
DecodedEnvelope decode_envelope(std::string_view bytes);

// Whether a record is held, read without decoding the rest of it (a census of a large queue
// reads every record); nullopt when the bytes are not a MessagePack map or "held" is not a
// boolean. Records that decode_envelope() refuses for other reasons may still answer.
std::optional<bool> envelope_held(std::string_view bytes);

}  // namespace relayq::queue
