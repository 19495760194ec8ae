// Byte layout of the store's keys: big-endian so RocksDB's bytewise order is numeric order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "queue/message.hpp"
#include "queue/store.hpp"

namespace relayq::queue {

inline constexpr std::size_t kIdKeySize = 8;
// due_ms, id, recipient index.
inline constexpr std::size_t kDueKeySize = 8 + 8 + 2;

// Key of "envelopes" and "bodies": the 8-byte big-endian id.
std::string id_key(MessageId id);
std::optional<MessageId> parse_id_key(std::string_view key);

// Key of "due". Times before the epoch are stored as 0: unsigned big-endian bytes would sort a
// negative time after every real one.
std::string due_key(const DueEntry& entry);
std::optional<DueEntry> parse_due_key(std::string_view key);

}  // namespace relayq::queue
