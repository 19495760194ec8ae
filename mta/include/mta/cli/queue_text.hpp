// Human-readable renderings of the admin API's JSON for `relayq queue list|show|stats`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace relayq::mta {

// "45s", "4m", "3m12s", "1h2m", "2d3h": the two largest units (the second left out when 0);
// negative durations count as 0.
std::string format_duration(std::int64_t ms);

// The table of `queue list`: a header, then one row per line of GET /v1/queue (id, age,
// next attempt in, sender, pending recipients, last error truncated), each ending in '\n'.
std::string list_header();
std::string list_row(const nlohmann::ordered_json& line, std::int64_t now_ms);

// `queue show`: the envelope, then each recipient's state and its attempts, one a line
// ("attempt 2 at <time> via <nexthop>: <reply>; next attempt in 4m (rule default)").
std::string show_text(const nlohmann::ordered_json& message, std::int64_t now_ms);

// `queue stats`: counts by state and recipient state, oldest age, the domains.
std::string stats_text(const nlohmann::ordered_json& stats);

}  // namespace relayq::mta
