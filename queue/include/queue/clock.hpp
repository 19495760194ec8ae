// The wall clock that queue times are kept in: message ids, reception times, next attempts
// and the due index are all milliseconds since the Unix epoch. Any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace relayq::queue {

inline std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace relayq::queue
