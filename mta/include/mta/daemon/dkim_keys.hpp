// The [[dkim.sign]] keys of a config, loaded: for the daemon's signing and for
// `relayq dkim-record`. Main thread (start, reload, the command line).
#pragma once

#include <memory>
#include <vector>

#include "mta/config/config.hpp"
#include "policy/dkim.hpp"

namespace relayq::mta {

// Throws ConfigError ("FILE:LINE: dkim.sign[0].key: why") for a key that does not load: a
// start or a reload with such a key fails whole.
std::vector<std::shared_ptr<const policy::DkimSigner>> load_dkim_signers(const Config& config);

}  // namespace relayq::mta
