// Envelope <-> bytes: MessagePack with short field names, as stored in the "envelopes" family.
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

// Never throws: malformed bytes, wrong field types and unknown versions become `error`.
DecodedEnvelope decode_envelope(std::string_view bytes);

}  // namespace relayq::queue
