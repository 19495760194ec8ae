// server.hostname's default: the machine's fully qualified name, found as Postfix finds its
// myhostname. Any thread; the lookup runs once, on the first config read that needs it.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "dns/domain_name.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta {

namespace {

std::string look_up_machine_hostname() {
  char name[256] = {};
  // Truncated names are not NUL-terminated (POSIX leaves it open): the last byte stays 0.
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name, nullptr, &hints, &found) != 0) return dns::lower_case(name);
  const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(found, &::freeaddrinfo);
  const char* canonical = found->ai_canonname;
  return dns::lower_case(canonical != nullptr && canonical[0] != '\0' ? canonical : name);
}

}  // namespace

const std::string& machine_hostname() {
  static const std::string name = look_up_machine_hostname();
  return name;
}

}  // namespace relayq::mta
