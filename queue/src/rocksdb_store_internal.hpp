// What the rocksdb_store_*.cpp files share and nothing else uses: the meta family's key that
// the opening reads and the writer writes.
#pragma once

namespace relayq::queue {

// A key of the default ("meta") family (the other, "schema_version", is only read at open).
// The highest id ever stored, so ids stay unique after a restart with a clock that went back
// even once the message holding the highest id has been delivered and deleted.
inline constexpr const char* kLastIdKey = "last_id";

}  // namespace relayq::queue
