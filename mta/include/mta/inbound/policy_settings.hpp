// The [policy] and [[dkim.sign]] sections as the inbound connections use them: which checks run
// on mail from strangers, and which keys sign our own users' mail. Immutable once built
// (daemon/settings.cpp), shared by every loop; a reload makes new ones.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "policy/dkim.hpp"

namespace relayq::mta {

enum class SpfMode : std::uint8_t { off, tag, reject };
enum class RdnsMode : std::uint8_t { off, tag, require };

struct PolicySettings {
  SpfMode spf = SpfMode::off;
  RdnsMode rdns = RdnsMode::off;
  bool dkim_verify = false;
  bool dmarc = false;
  // Mail from clients with relay rights (AUTH, relay.networks) whose From: domain is a
  // signer's domain is signed by every such key before it is stored.
  std::vector<std::shared_ptr<const policy::DkimSigner>> signers;

  // Checks that hold a MAIL until they answer.
  bool checks_senders() const { return spf != SpfMode::off || rdns != RdnsMode::off; }
  // Any check that writes Authentication-Results.
  bool checks_anything() const { return checks_senders() || dkim_verify || dmarc; }
};

}  // namespace relayq::mta
