// Listening sockets with SO_REUSEPORT: one per loop per listener.
#include "listen_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace relayq::mta {

void split_host_port(const std::string& address, std::string& host, std::uint16_t& port) {
  std::string port_text;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      throw std::invalid_argument("expected [ipv6]:port");
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("expected host:port");
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("bad port");
  const unsigned long value = std::stoul(port_text);
  if (value == 0 || value > 65535) throw std::invalid_argument("port out of range");
  port = static_cast<std::uint16_t>(value);
}

int open_listen_socket(const std::string& host, std::uint16_t port) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
      inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
             inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    family = AF_INET6;
    length = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("listener " + host + ": not a numeric IP address");
  }
  const std::string name = (family == AF_INET6 ? "[" + host + "]" : host) + ":" +
                           std::to_string(port);
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("listener " + name + ": socket: " + std::strerror(errno));
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd, 1024) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("listener " + name + ": " + error);
  }
  return fd;
}

}  // namespace relayq::mta
