// `relayq retry-plan`: the attempt times the config's [retry] schedule gives a message whose
// attempts all fail at once, for the default rule or one domain's override. Main thread.
#pragma once

#include <string>

namespace relayq::mta {

// Prints the plan on stdout, one line per attempt then the delay warning and the bounce (or, with
// `json`, one object) and returns the exit code: 0, or 2 for a config that does not load (said
// on stderr as FILE:LINE: message). An empty `domain` means the default [retry].
int retry_plan(const std::string& config_path, const std::string& domain, bool json);

}  // namespace relayq::mta
