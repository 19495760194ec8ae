// A real DNS server for tests (tests/support/dns_server.py) in a child process on a free
// loopback port, serving a zone given as text; stopped when the object goes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace relayq::test {

class DnsTestServer {
 public:
  // `servfail` names answer SERVFAIL, `timeout` names are never answered.
  explicit DnsTestServer(const std::string& zone, std::vector<std::string> servfail = {},
                         std::vector<std::string> timeout = {})
      : servfail_(std::move(servfail)), timeout_(std::move(timeout)) {
    char folder[] = "/tmp/relayq-dns-XXXXXX";
    if (mkdtemp(folder) == nullptr) throw std::runtime_error("mkdtemp failed");
    folder_ = folder;
    std::ofstream(folder_ / "zone") << zone;
    // The port is free when chosen but may be taken before the server binds it: try again.
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) start(free_port());
    if (pid_ < 0) throw std::runtime_error("dns_server.py did not start");
  }

  ~DnsTestServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }

  DnsTestServer(const DnsTestServer&) = delete;
  DnsTestServer& operator=(const DnsTestServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // SIGTERM and wait; lookups after this find nobody listening.
  void stop() {
    if (pid_ < 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    close(output_);
    pid_ = -1;
  }

  // How many queries for `name` (lower-case, no trailing dot) of `type` ("MX") reached it.
  std::size_t queries(const std::string& name, const std::string& type) const {
    std::ifstream log(folder_ / "queries");
    std::size_t count = 0;
    for (std::string line; std::getline(log, line);) count += line == name + " " + type;
    return count;
  }

 private:
  static std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bind(fd, reinterpret_cast<sockaddr*>(&address), length);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
  }

  void start(std::uint16_t port) {
    const auto script =
        std::filesystem::path(__FILE__).parent_path() / "../../support/dns_server.py";
    std::vector<std::string> args = {"/usr/bin/python3", script.string(),
                                     "--port",           std::to_string(port),
                                     "--zone",           (folder_ / "zone").string(),
                                     "--query-log",      (folder_ / "queries").string()};
    for (const auto& name : servfail_) args.insert(args.end(), {"--servfail", name});
    for (const auto& name : timeout_) args.insert(args.end(), {"--timeout", name});
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    pid_t pid;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    if (spawned != 0) {
      close(pipe_fds[0]);
      throw std::runtime_error("cannot run /usr/bin/python3");
    }
    if (read_line(pipe_fds[0]) == "ready") {
      pid_ = pid;
      port_ = port;
      output_ = pipe_fds[0];  // kept open: the server never meets a closed stdout
      return;
    }
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    close(pipe_fds[0]);
  }

  // The first line the server prints, "" if it exits or stays silent for 10 s.
  static std::string read_line(int fd) {
    std::string line;
    pollfd watch{fd, POLLIN, 0};
    char c;
    while (poll(&watch, 1, 10000) == 1 && read(fd, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }

  std::vector<std::string> servfail_, timeout_;
  std::filesystem::path folder_;
  pid_t pid_ = -1;
  int output_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace relayq::test
