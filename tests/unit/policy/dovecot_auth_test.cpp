// Unit tests of the Dovecot auth client: the protocol's lines alone (handshake, AUTH request,
// verdicts, Dovecot's escaping), then DovecotAuth over a unix socket against a scripted server
// on a thread of the test: verdicts, timeouts, a missing socket. The real Dovecot is in
// tests/integration/test_dovecot_auth.py.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "mta/smtp/auth_exchange.hpp"
#include "policy/dovecot_auth.hpp"
#include "policy/dovecot_auth_protocol.hpp"
#include "support/temp_dir.hpp"

namespace relayq::policy {
namespace {

using namespace std::string_literals;
using dovecot::ServerHandshake;

// What Dovecot 2.3.19 sends a new auth client (auth_mechanisms = plain login).
const std::string kHandshake =
    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t4242\nCUID\t7\n"
    "COOKIE\t0123456789abcdef0123456789abcdef\nDONE\n";

PasswordClient client_at(const char* address, const char* local = nullptr) {
  PasswordClient client{*dns::IpAddress::parse(address), std::nullopt};
  if (local != nullptr) client.local = dns::IpAddress::parse(local);
  return client;
}

ServerHandshake::Status read_all(ServerHandshake& handshake, std::string_view lines) {
  auto status = ServerHandshake::Status::more;
  while (!lines.empty() && status == ServerHandshake::Status::more) {
    const std::size_t end = lines.find('\n');
    status = handshake.read_line(lines.substr(0, end));
    lines.remove_prefix(end + 1);
  }
  return status;
}

TEST_CASE("Dovecot: fields unescape as its str_tabunescape() does", "[policy][dovecot]") {
  CHECK(dovecot::tab_unescape("plain") == "plain");
  CHECK(dovecot::tab_unescape("a\001tb\001nc\001rd\0011e") == "a\tb\nc\rd\001e");
  CHECK(dovecot::tab_unescape("\001x") == "x");  // an unknown escape stands for its character
  CHECK(dovecot::tab_unescape("end\001") == "end");
  CHECK(dovecot::tab_unescape("") == "");
}

TEST_CASE("Dovecot: our handshake, then the server's", "[policy][dovecot]") {
  CHECK(dovecot::client_handshake(1234) == "VERSION\t1\t2\nCPID\t1234\n");

  ServerHandshake real;
  CHECK(read_all(real, kHandshake) == ServerHandshake::Status::done);
  CHECK(real.error().empty());
  // Lines it does not know, and a later minor version, are fine.
  ServerHandshake later;
  CHECK(read_all(later, "VERSION\t1\t9\nMECH\tPLAIN\nFUTURE\tthing\nDONE\n") ==
        ServerHandshake::Status::done);
  ServerHandshake before_done;
  CHECK(read_all(before_done, "VERSION\t1\t2\nMECH\tPLAIN\n") == ServerHandshake::Status::more);

  ServerHandshake no_plain;
  CHECK(read_all(no_plain, "VERSION\t1\t2\nMECH\tLOGIN\tplaintext\nMECH\tCRAM-MD5\nDONE\n") ==
        ServerHandshake::Status::failed);
  CHECK(no_plain.error() == "Dovecot does not offer PLAIN: add it to its auth_mechanisms");
  ServerHandshake major;
  CHECK(read_all(major, "VERSION\t2\t0\nMECH\tPLAIN\nDONE\n") == ServerHandshake::Status::failed);
  CHECK(major.error() == "Dovecot speaks auth protocol version 2, relayq speaks 1");
  ServerHandshake no_version;
  CHECK(read_all(no_version, "MECH\tPLAIN\nDONE\n") == ServerHandshake::Status::failed);
  CHECK(no_version.error() == "Dovecot's handshake ended without a VERSION line");
}

TEST_CASE("Dovecot: the AUTH request carries user and password in base64 only",
          "[policy][dovecot]") {
  CHECK(dovecot::auth_request(1, "alice", "secret", client_at("192.0.2.7", "192.0.2.1")) ==
        "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tno-penalty\trip=192.0.2.7\tlip=192.0.2.1\t"
        "secured\tresp=AGFsaWNlAHNlY3JldA==\n");
  CHECK(dovecot::auth_request(7, "alice", "secret", client_at("2001:db8::7")) ==
        "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tno-penalty\trip=2001:db8::7\tsecured\t"
        "resp=AGFsaWNlAHNlY3JldA==\n");

  SECTION("a TAB, CR or LF in the user or password never reaches the line") {
    const std::string user = "eve\tresp=AAAA\nAUTH\t2\r\001x";
    const std::string password = "pass\tword\n";
    const std::string line = dovecot::auth_request(1, user, password, client_at("192.0.2.7"));
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.find('\001') == std::string::npos);
    CHECK(std::count(line.begin(), line.end(), '\t') == 8);  // the fields we put there
    const std::string resp = line.substr(line.rfind("\tresp=") + 6);
    CHECK(mta::decode_base64(resp.substr(0, resp.size() - 1)) == "\0"s + user + "\0"s + password);
  }
}

TEST_CASE("Dovecot: OK accepts, FAIL refuses, temp_fail and nonsense are unavailable",
          "[policy][dovecot]") {
  const auto verdict = [](std::string_view line) { return dovecot::read_auth_reply(line, 1); };
  CHECK(verdict("OK\t1\tuser=alice").verdict == PasswordVerdict::accepted);
  CHECK(verdict("OK\t1").verdict == PasswordVerdict::accepted);
  CHECK(verdict("FAIL\t1\tuser=alice").verdict == PasswordVerdict::refused);
  // A disabled user or an expired password is refused: the client can do nothing about it now.
  CHECK(verdict("FAIL\t1\tuser=alice\tcode=user_disabled").verdict == PasswordVerdict::refused);
  CHECK(verdict("FAIL\t1\tcode=pass_expired\treason=Password expired").verdict ==
        PasswordVerdict::refused);

  const PasswordCheck temporary = verdict("FAIL\t1\tuser=alice\tcode=temp_fail");
  CHECK(temporary.verdict == PasswordVerdict::unavailable);
  CHECK(temporary.detail == "Dovecot failed temporarily");
  const PasswordCheck with_reason =
      verdict("FAIL\t1\tcode=temp_fail\treason=LDAP\001tdown\001nnow");
  CHECK(with_reason.verdict == PasswordVerdict::unavailable);
  CHECK(with_reason.detail == "Dovecot failed temporarily: LDAP\tdown\nnow");
  CHECK(verdict("FAIL\t1\ttemp").verdict == PasswordVerdict::unavailable);  // before 2.3

  const std::pair<std::string, std::string> nonsense[] = {
      {"CONT\t1\tAAAA", "Dovecot asked for more (CONT) than PLAIN's one response"},
      {"OK\t2\tuser=alice", "Dovecot answered OK for another request"},
      {"OK", "Dovecot answered OK for another request"},
      {"FAIL\t\tuser=alice", "Dovecot answered FAIL for another request"},
      {"", "Dovecot sent a line relayq does not know: \"\""},
      {"HELLO\t1", "Dovecot sent a line relayq does not know: \"HELLO\""},
      {std::string(100, 'X'),
       "Dovecot sent a line relayq does not know: \"" + std::string(32, 'X') + "\""},
  };
  for (const auto& [line, detail] : nonsense) {
    INFO(line);
    const PasswordCheck check = verdict(line);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail == detail);
  }
}

// Dovecot's side of one connection, on a thread: sends `greeting` once connected, reads up to the
// end of the AUTH line (or until the client leaves), and answers it with `answer` ("" = never);
// or, with `hang_up`, closes once the client's handshake is read (unread input would make the
// close a reset).
class ScriptedDovecot {
 public:
  ScriptedDovecot(const std::string& path, std::string greeting, std::string answer,
                  bool hang_up = false)
      : listener_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener_, 4) == 0);
    thread_ =
        std::thread([this, greeting = std::move(greeting), answer = std::move(answer), hang_up] {
          pollfd ready{listener_, POLLIN, 0};
          if (::poll(&ready, 1, 5000) != 1) return;
          const int connection = ::accept(listener_, nullptr, nullptr);
          if (connection < 0) return;
          (void)::write(connection, greeting.data(), greeting.size());
          char chunk[4096];
          const std::string_view last_line = hang_up ? "CPID\t" : "AUTH\t";
          for (;;) {
            const std::size_t last = received_.find(last_line);
            if (last != std::string::npos && received_.find('\n', last) != std::string::npos) break;
            const ssize_t count = ::read(connection, chunk, sizeof chunk);
            if (count <= 0) break;
            received_.append(chunk, static_cast<std::size_t>(count));
          }
          if (!hang_up && !answer.empty()) (void)::write(connection, answer.data(), answer.size());
          // Holds the connection until the client is done with it, unless hanging up.
          while (!hang_up && ::read(connection, chunk, sizeof chunk) > 0) {
          }
          ::close(connection);
        });
  }
  ~ScriptedDovecot() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  // What the client sent; call after the check has returned.
  const std::string& received() {
    thread_.join();
    return received_;
  }

 private:
  int listener_;
  std::thread thread_;
  std::string received_;
};

TEST_CASE("DovecotAuth checks over a unix socket", "[policy][dovecot]") {
  test::TempDir dir;
  const std::string path = (dir.path / "auth-client").string();
  const DovecotAuth auth({.socket_path = path, .address = {}, .port = 0});
  const PasswordClient client = client_at("192.0.2.7", "192.0.2.1");

  SECTION("OK") {
    ScriptedDovecot dovecot(path, kHandshake, "OK\t1\tuser=alice\n");
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::accepted);
    CHECK(dovecot.received() == "VERSION\t1\t2\nCPID\t" + std::to_string(::getpid()) + "\n" +
                                    dovecot::auth_request(1, "alice", "secret", client));
  }
  SECTION("FAIL") {
    ScriptedDovecot dovecot(path, kHandshake, "FAIL\t1\tuser=alice\n");
    CHECK(auth.check("alice", "wrong", client).verdict == PasswordVerdict::refused);
  }
  SECTION("temp_fail, named with the endpoint") {
    ScriptedDovecot dovecot(path, kHandshake, "FAIL\t1\tcode=temp_fail\n");
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail == "dovecot unix:" + path + ": Dovecot failed temporarily");
  }
  SECTION("a handshake without PLAIN: no request is sent") {
    ScriptedDovecot dovecot(path, "VERSION\t1\t2\nMECH\tLOGIN\nDONE\n", "");
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail ==
          "dovecot unix:" + path + ": Dovecot does not offer PLAIN: add it to its auth_mechanisms");
    CHECK(dovecot.received().find("AUTH") == std::string::npos);
  }
  SECTION("Dovecot hangs up in the handshake") {
    ScriptedDovecot dovecot(path, "VERSION\t1\t2\nMECH\tPLAIN\n", "", true);
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail ==
          "dovecot unix:" + path + ": Dovecot closed the connection in the handshake");
  }
  SECTION("a user or password holding NUL is refused without asking") {
    // Nothing listens: asking would have been unavailable.
    CHECK(auth.check("alice\0x"s, "secret", client).verdict == PasswordVerdict::refused);
    CHECK(auth.check("alice", "secret\0"s, client).verdict == PasswordVerdict::refused);
  }
  SECTION("nothing listens") {
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail == "dovecot unix:" + path + ": connect: No such file or directory");
  }
}

TEST_CASE("DovecotAuth gives up on a Dovecot that never answers", "[policy][dovecot]") {
  test::TempDir dir;
  const std::string path = (dir.path / "auth-client").string();
  const DovecotAuth::Timeouts short_timeouts{.connect = std::chrono::milliseconds(200),
                                             .reply = std::chrono::milliseconds(200)};
  const DovecotAuth auth({.socket_path = path, .address = {}, .port = 0}, short_timeouts);
  const PasswordClient client = client_at("192.0.2.7");

  SECTION("no handshake: the connection waits in the backlog, never accepted") {
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    const auto started = std::chrono::steady_clock::now();
    const PasswordCheck check = auth.check("alice", "secret", client);
    const auto took = std::chrono::steady_clock::now() - started;
    ::close(listener);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail == "dovecot unix:" + path + ": timed out in the handshake");
    CHECK(took >= std::chrono::milliseconds(190));
    CHECK(took < std::chrono::seconds(2));
  }
  SECTION("no verdict") {
    ScriptedDovecot dovecot(path, kHandshake, "");
    const PasswordCheck check = auth.check("alice", "secret", client);
    CHECK(check.verdict == PasswordVerdict::unavailable);
    CHECK(check.detail == "dovecot unix:" + path + ": timed out waiting for the verdict");
  }
}

}  // namespace
}  // namespace relayq::policy
