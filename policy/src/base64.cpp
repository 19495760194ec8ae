// Base64 through OpenSSL's EVP_EncodeBlock (declared in base64.hpp). Any thread.
#include "base64.hpp"

#include <openssl/evp.h>

namespace relayq::policy {

std::string base64(std::string_view bytes) {
  std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // with EVP's NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  encoded.resize(static_cast<std::size_t>(written));
  return encoded;
}

}  // namespace relayq::policy
