// Encoding and decoding of the store's big-endian keys.
#include "keys.hpp"

#include <algorithm>
#include <limits>

namespace relayq::queue {
namespace {

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

std::uint64_t get_be(std::string_view in, std::size_t offset, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(in[offset + static_cast<std::size_t>(i)]);
  }
  return value;
}

}  // namespace

std::string id_key(MessageId id) {
  std::string key;
  key.reserve(kIdKeySize);
  put_be(key, id, 8);
  return key;
}

std::optional<MessageId> parse_id_key(std::string_view key) {
  if (key.size() != kIdKeySize) return std::nullopt;
  return get_be(key, 0, 8);
}

std::string due_key(const DueEntry& entry) {
  std::string key;
  key.reserve(kDueKeySize);
  put_be(key, static_cast<std::uint64_t>(std::max<std::int64_t>(entry.due_ms, 0)), 8);
  put_be(key, entry.id, 8);
  put_be(key, entry.recipient, 2);
  return key;
}

std::optional<DueEntry> parse_due_key(std::string_view key) {
  if (key.size() != kDueKeySize) return std::nullopt;
  const auto due = get_be(key, 0, 8);
  // Written from a clamped non-negative int64, so the top bit set means a foreign key.
  if (due > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return DueEntry{static_cast<std::int64_t>(due), get_be(key, 8, 8),
                  static_cast<std::uint16_t>(get_be(key, 16, 2))};
}

}  // namespace relayq::queue
