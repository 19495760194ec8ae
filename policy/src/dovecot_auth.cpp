// DovecotAuth: one password check over a socket to Dovecot's auth service, with blocking I/O
// under deadlines. Worker threads (libuv's pool), never an event loop.
//
// Each check opens a connection of its own and closes it: a check comes once per submission
// session, and the handshake is one exchange on a local socket, small beside Dovecot's own
// work. Nothing is shared between workers, and a Dovecot that restarted never leaves a dead
// connection behind for the next check to trip over.
#include "policy/dovecot_auth.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <string.h>  // explicit_bzero
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <system_error>

#include "policy/dovecot_auth_protocol.hpp"

namespace relayq::policy {
namespace {

using Clock = std::chrono::steady_clock;

// Dovecot's lines fit in 8 KiB (its protocol says so); a longer one is not Dovecot talking.
constexpr std::size_t kMaxLine = 64 * 1024;
// Our one request on each connection.
constexpr std::uint32_t kRequestId = 1;

// Anything that makes the verdict "unavailable"; what() goes to the log.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string error_text(int error) {
  return std::generic_category().message(error);  // strerror() is not thread-safe
}

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Waits until the socket is ready for `events`, or throws once `deadline` has passed.
void wait_for(const Socket& socket, short events, Clock::time_point deadline, const char* doing) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw Unavailable(std::string("timed out ") + doing);
    pollfd ready{socket.fd(), events, 0};
    const int count = ::poll(&ready, 1, static_cast<int>(left.count()));
    if (count > 0) return;
    if (count < 0 && errno != EINTR)
      throw Unavailable(std::string(doing) + ": " + error_text(errno));
  }
}

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

SocketAddress address_of(const DovecotEndpoint& endpoint) {
  SocketAddress address;
  if (endpoint.socket_path.empty()) {
    address.storage = endpoint.address.to_sockaddr(endpoint.port);
    address.length = endpoint.address.v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    return address;
  }
  auto& un = reinterpret_cast<sockaddr_un&>(address.storage);
  un.sun_family = AF_UNIX;
  // The config refuses a path that does not fit, NUL included.
  endpoint.socket_path.copy(un.sun_path, sizeof un.sun_path - 1);
  address.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + endpoint.socket_path.size() + 1);
  return address;
}

// The socket is non-blocking, so that connecting, like every wait after it, has a deadline.
void connect_to(const Socket& socket, const SocketAddress& address, Clock::time_point deadline) {
  if (::connect(socket.fd(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) ==
      0)
    return;
  // A unix socket whose backlog is full says EAGAIN at once: Dovecot is too busy, unavailable.
  if (errno != EINPROGRESS) throw Unavailable("connect: " + error_text(errno));
  wait_for(socket, POLLOUT, deadline, "connecting");
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  if (error != 0) throw Unavailable("connect: " + error_text(error));
}

void send_all(const Socket& socket, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a Dovecot that went away is an error here, not a SIGPIPE for the daemon.
    const ssize_t sent = ::send(socket.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(socket, POLLOUT, deadline, "sending");
    } else if (errno != EINTR) {
      throw Unavailable("send: " + error_text(errno));
    }
  }
}

// The server's lines, one at a time, each within a deadline.
class LineReader {
 public:
  explicit LineReader(const Socket& socket) : socket_(socket) {}

  std::string next(Clock::time_point deadline, const char* doing) {
    for (;;) {
      if (const std::size_t end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      if (buffer_.size() > kMaxLine) throw Unavailable("Dovecot sent a line too long");
      char chunk[4096];
      const ssize_t count = ::recv(socket_.fd(), chunk, sizeof chunk, 0);
      if (count > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(count));
      } else if (count == 0) {
        throw Unavailable(std::string("Dovecot closed the connection ") + doing);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_for(socket_, POLLIN, deadline, doing);
      } else if (errno != EINTR) {
        throw Unavailable("recv: " + error_text(errno));
      }
    }
  }

 private:
  const Socket& socket_;
  std::string buffer_;
};

}  // namespace

std::string DovecotEndpoint::to_string() const {
  if (!socket_path.empty()) return "unix:" + socket_path;
  const std::string host = address.to_string();
  return (address.v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

PasswordCheck DovecotAuth::check(std::string_view user, std::string_view password,
                                 const PasswordClient& client) const {
  // PLAIN separates its fields with NUL: a name or password holding one would be read as other
  // fields, "alice\0x" as alice.
  if (user.find('\0') != std::string_view::npos || password.find('\0') != std::string_view::npos)
    return {PasswordVerdict::refused, {}};
  std::string request;  // holds the password, in base64: wiped whatever happens
  PasswordCheck result;
  try {
    const auto handshake_deadline = Clock::now() + timeouts_.connect;
    const SocketAddress address = address_of(endpoint_);
    const Socket socket(
        ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (socket.fd() < 0) throw Unavailable("socket: " + error_text(errno));
    connect_to(socket, address, handshake_deadline);
    send_all(socket, dovecot::client_handshake(static_cast<std::uint32_t>(::getpid())),
             handshake_deadline);

    LineReader lines(socket);
    dovecot::ServerHandshake handshake;
    for (;;) {
      const auto status = handshake.read_line(lines.next(handshake_deadline, "in the handshake"));
      if (status == dovecot::ServerHandshake::Status::failed) throw Unavailable(handshake.error());
      if (status == dovecot::ServerHandshake::Status::done) break;
    }

    const auto reply_deadline = Clock::now() + timeouts_.reply;
    request = dovecot::auth_request(kRequestId, user, password, client);
    send_all(socket, request, reply_deadline);
    result =
        dovecot::read_auth_reply(lines.next(reply_deadline, "waiting for the verdict"), kRequestId);
  } catch (const Unavailable& error) {
    result = {PasswordVerdict::unavailable, error.what()};
  }
  explicit_bzero(request.data(), request.size());
  if (result.verdict == PasswordVerdict::unavailable)
    result.detail = "dovecot " + endpoint_.to_string() + ": " + result.detail;
  return result;
}

}  // namespace relayq::policy
