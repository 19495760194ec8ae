// What a finished TLS handshake agreed: the session records it in Received:, delivery in the
// attempt history. A plain value, made by the TLS stream (net/) and read by the protocol cores.
#pragma once

#include <string>

namespace relayq::mta {

struct TlsInfo {
  std::string version;    // "TLSv1.3"
  std::string cipher;     // "TLS_AES_256_GCM_SHA384"
  int bits = 0;           // the cipher's secret bits
  bool verified = false;  // the peer's certificate chain and name were verified (outbound)
  bool resumed = false;   // an earlier session was resumed: no full handshake
};

}  // namespace relayq::mta
