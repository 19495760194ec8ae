// `relayq check-config --config NEW --diff-against OLD`: both files validated, then how the retry
// schedule changes between them, old and new plan side by side. Main thread.
#pragma once

#include <string>

namespace relayq::mta {

// Prints "FILE: ok" for each, then the retry plans that differ (the default [retry] and every
// domain with a [retry.domains."x"] in either file), or "retry schedule unchanged". Returns 0, or
// 2 when either file does not load (each error on stderr as FILE:LINE: message).
int check_config_diff(const std::string& new_path, const std::string& old_path);

}  // namespace relayq::mta
