// Dates as RFC 5322 writes them ("Tue, 14 Nov 2023 22:13:20 +0000"), for mail headers and DSNs.
#pragma once

#include <cstdint>
#include <string>

namespace relayq::queue {

// The wall-clock time `time_ms` (ms since the epoch) in UTC, to the second.
std::string format_rfc5322_date(std::int64_t time_ms);

}  // namespace relayq::queue
