// The attempt times a retry policy gives one recipient whose every attempt fails at once with a
// 4xx: what `relayq retry-plan` prints. Pure arithmetic over retry_delay(), any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "queue/retry_policy.hpp"

namespace relayq::queue {

// One attempt, its times counted from reception.
struct PlannedAttempt {
  std::uint32_t number = 0;  // 1 = the first, at reception
  Millis after{0};           // with every wait at its nominal length
  Millis earliest{0};        // with every wait at its shortest (-jitter)
  Millis latest{0};          // with every wait at its longest (+jitter)
};

struct RetryPlan {
  std::vector<PlannedAttempt> attempts;  // the last one is at max_age
  // The attempt after whose failure the "delayed" DSN goes out: the first one at or past
  // delay_warning that is not the last (the last bounces instead). None when delay_warning is 0
  // or only the last attempt is late enough.
  std::optional<std::uint32_t> delay_warning_attempt;
  Millis bounce_after{0};  // the last attempt's failure bounces the recipient: max_age
};

// The attempts along the nominal waits, as the delivery engine schedules them: the next attempt
// is due min(previous + wait, max_age), and an attempt at max_age that fails bounces. Each bound
// caps at max_age too. The bounds are extremes, every wait at its shortest or longest: along
// them more or fewer attempts fit before max_age than the nominal ones this plan lists.
RetryPlan plan_retries(const RetryPolicy& policy);

}  // namespace relayq::queue
