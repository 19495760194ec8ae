// What relayq reads from raw DNS answers itself: c-ares 1.18 returns no TTLs for MX, TXT and
// PTR answers, nor the SOA of a negative answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace relayq::dns {

struct PacketTtls {
  std::optional<std::uint32_t> answer;    // the smallest TTL in the answer section
  std::optional<std::uint32_t> negative;  // min(SOA TTL, SOA minimum) from the authority section
};

// nullopt when the packet is malformed.
std::optional<PacketTtls> read_ttls(std::span<const unsigned char> packet);

// The answer-section record count from the header (0 for a packet shorter than a header).
std::size_t answer_count(std::span<const unsigned char> packet);

}  // namespace relayq::dns
