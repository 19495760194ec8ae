// Whether a recipient of one of our own domains exists, asked before its RCPT is accepted, so
// that relayq never accepts mail it would later have to bounce (backscatter). The inbound side
// asks (for the domains of routes with verify_recipients, which the session's config names);
// delivery answers, by asking the domain's mailbox server (an LMTP RCPT probe). One per loop
// thread, used on that thread only.
#pragma once

#include <functional>
#include <string>

namespace relayq::mta {

enum class RecipientVerdict {
  exists,       // the mailbox server accepted the RCPT: 250
  unknown,      // it refused it permanently: 550 5.1.1
  temporary,    // it refused it for now (4xx): 450 4.2.0
  unavailable,  // it could not be asked (down, timed out): 451 4.4.3
};

class RecipientVerifier {
 public:
  virtual ~RecipientVerifier() = default;
  // The verdict on `address` comes to `done` on this loop's thread: at once when it is
  // cached, else once the mailbox server has answered.
  using Done = std::function<void(RecipientVerdict verdict)>;
  virtual void verify(const std::string& address, Done done) = 0;
};

}  // namespace relayq::mta
