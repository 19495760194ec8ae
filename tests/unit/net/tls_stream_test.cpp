// net::TlsStream over real loopback TCP streams, with a certificate made at run time: the
// handshake and what it reports (version, cipher, verification, resumption), bytes both ways
// (large and many small writes, writes made before the handshake), one stream_written() per
// write, certificate and host checks, the protocol floor, session resumption through a
// TlsSessionCache, orderly and abrupt ends, garbage instead of a ClientHello; and TlsContext's
// and TlsSessionCache's own promises. Every loop run is bounded by a timer.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/ip_address.hpp"
#include "mta/net/listen_socket.hpp"
#include "mta/net/socket_stream.hpp"
#include "mta/net/tls_context.hpp"
#include "mta/net/tls_stream.hpp"
#include "support/temp_dir.hpp"

namespace relayq::mta::net {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// A self-signed P-256 certificate for relay.test and 127.0.0.1, written as PEM files: made per
// test, so that no key ever lives in the tree and none expires.
struct TestCertificate {
  std::string cert;
  std::string key;
};

TestCertificate make_certificate(const std::filesystem::path& dir) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  REQUIRE(key);
  std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), &X509_free);
  REQUIRE(x509);
  REQUIRE(X509_set_version(x509.get(), 2) == 1);  // v3, for subjectAltName
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 1) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x509.get()), -3600) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x509.get()), 24 * 3600) != nullptr);
  REQUIRE(X509_set_pubkey(x509.get(), key.get()) == 1);
  X509_NAME* name = X509_get_subject_name(x509.get());
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("relay.test"), -1, -1,
                                     0) == 1);
  REQUIRE(X509_set_issuer_name(x509.get(), name) == 1);
  X509V3_CTX v3{};
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x509.get(), x509.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:relay.test");
  REQUIRE(san != nullptr);
  const int added = X509_add_ext(x509.get(), san, -1);
  X509_EXTENSION_free(san);
  REQUIRE(added == 1);
  REQUIRE(X509_sign(x509.get(), key.get(), EVP_sha256()) > 0);

  TestCertificate files{(dir / "cert.pem").string(), (dir / "key.pem").string()};
  FILE* cert = std::fopen(files.cert.c_str(), "w");
  REQUIRE(cert != nullptr);
  const int cert_ok = PEM_write_X509(cert, x509.get());
  std::fclose(cert);
  REQUIRE(cert_ok == 1);
  FILE* pem_key = std::fopen(files.key.c_str(), "w");
  REQUIRE(pem_key != nullptr);
  const int key_ok =
      PEM_write_PrivateKey(pem_key, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(pem_key);
  REQUIRE(key_ok == 1);
  return files;
}

// Options built field by field (-Wextra frowns on brace lists that leave fields out).
TlsStream::ClientOptions to_host(std::string host, TlsSessionCache* cache = nullptr,
                                 std::string cache_key = {}) {
  TlsStream::ClientOptions options;
  options.host = std::move(host);
  options.cache = cache;
  options.cache_key = std::move(cache_key);
  return options;
}

TlsContext::ServerOptions server_options(const TestCertificate& certificate,
                                         TlsVersion min_version = TlsVersion::tls1_2) {
  TlsContext::ServerOptions options;
  options.cert = certificate.cert;
  options.key = certificate.key;
  options.min_version = min_version;
  return options;
}

// Records what a stream tells; closes the stream when it ends, as the connections do.
struct Recorder : StreamEvents {
  void stream_connected(int status) override { connect_status = status; }
  void stream_read(std::string_view bytes) override {
    if (secured == 0) ++reads_before_secured;
    received.append(bytes);
    if (on_read) on_read(bytes);
  }
  void stream_written() override { ++writes_done; }
  void stream_secured(const TlsInfo& tls) override {
    ++secured;
    info = tls;
    if (on_secured) on_secured();
  }
  void stream_ended(std::string_view why) override {
    ++ended;
    error = why;
    close();
  }
  void stream_closed() override { ++closed; }

  void close() {
    if (stream == nullptr || close_called || closed > 0) return;
    close_called = true;
    stream->close();
  }

  Stream* stream = nullptr;
  int connect_status = 1;
  std::string received;
  int reads_before_secured = 0;
  int writes_done = 0;
  int secured = 0;
  TlsInfo info;
  std::function<void()> on_secured;
  std::function<void(std::string_view)> on_read;
  int ended = 0;
  std::string error;
  bool close_called = false;
  int closed = 0;
};

// TLS over the server end of a connection, reading: it waits for the ClientHello.
void secure_server(Recorder& server, std::shared_ptr<const TlsContext> tls) {
  server.stream = TlsStream::server(server.stream, std::move(tls), server);
  server.stream->start_reading();
}

// TLS over the client end, reading, as the outbound connection starts it: the ClientHello goes
// out on begin(), once the user holds the pointer.
void secure_client(Recorder& client, std::shared_ptr<const TlsContext> tls,
                   const TlsStream::ClientOptions& options) {
  TlsStream* stream = TlsStream::client(client.stream, std::move(tls), options, client);
  client.stream = stream;
  stream->start_reading();
  stream->begin();
}

// A loop with a listen socket on 127.0.0.1 and a deadline timer. Owns the recorders, so that
// they outlive every stream; whatever a failed test leaves open is closed on the way out.
class Loopback {
 public:
  Loopback() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    const int fd = open_listen_socket("127.0.0.1", 0);
    uv_tcp_init(&loop_, &listener_);
    uv_tcp_open(&listener_, fd);
    listener_.data = this;
    uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 8, [](uv_stream_t* server, int) {
      auto* self = static_cast<Loopback*>(server->data);
      if (self->accepting_ == nullptr) return;
      self->accepting_->stream = SocketStream::accept(server, *self->accepting_);
      self->accepting_ = nullptr;
    });
    sockaddr_storage bound{};
    int length = sizeof(bound);
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  ~Loopback() {
    for (auto& recorder : recorders_) recorder->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // ends once every handle has closed
    uv_loop_close(&loop_);
  }
  Loopback(const Loopback&) = delete;
  Loopback& operator=(const Loopback&) = delete;

  Recorder& recorder() { return *recorders_.emplace_back(std::make_unique<Recorder>()); }
  std::uint16_t port() const { return port_; }

  // A loopback TCP connection: `client` and `server` get its two ends, neither reading yet.
  void connect(Recorder& client, Recorder& server) {
    accepting_ = &server;
    const sockaddr_storage address = dns::IpAddress::parse("127.0.0.1")->to_sockaddr(port_);
    int error = 0;
    client.stream =
        SocketStream::connect(&loop_, reinterpret_cast<const sockaddr&>(address), client, error);
    REQUIRE(error == 0);
    run_until([&] { return client.connect_status == 0 && server.stream != nullptr; });
  }

  // TLS over both ends of a fresh connection, each reading; the handshake is under way.
  void connect_tls(Recorder& client, Recorder& server, std::shared_ptr<const TlsContext> server_tls,
                   std::shared_ptr<const TlsContext> client_tls,
                   const TlsStream::ClientOptions& options) {
    connect(client, server);
    secure_server(server, std::move(server_tls));
    secure_client(client, std::move(client_tls), options);
  }

  // Both ends secured, or either failed.
  static bool handshaken(const Recorder& client, const Recorder& server) {
    return (client.secured > 0 && server.secured > 0) || client.ended > 0 || server.ended > 0;
  }

  // Runs the loop until `done`; a test that waits longer than `timeout_ms` fails.
  template <class Done>
  void run_until(Done done, std::uint64_t timeout_ms = 10000) {
    timed_out_ = false;
    uv_timer_start(
        &timer_,
        [](uv_timer_t* timer) {
          static_cast<Loopback*>(timer->data)->timed_out_ = true;
          uv_stop(timer->loop);
        },
        timeout_ms, 0);
    while (!done() && !timed_out_) uv_run(&loop_, UV_RUN_ONCE);
    uv_timer_stop(&timer_);
    if (!done()) FAIL("timed out waiting on the loop");
  }

 private:
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  uv_tcp_t listener_{};
  std::uint16_t port_ = 0;
  Recorder* accepting_ = nullptr;  // the next accepted connection's server end
  bool timed_out_ = false;
  std::vector<std::unique_ptr<Recorder>> recorders_;
};

// A certificate, the server context over it, and a loop to use them on.
struct Fixture {
  test::TempDir dir;
  TestCertificate certificate = make_certificate(dir.path);
  std::shared_ptr<const TlsContext> server_tls = TlsContext::server(server_options(certificate));
  Loopback net;

  std::shared_ptr<const TlsContext> verifying_client() {
    TlsContext::ClientOptions options;
    options.ca_file = certificate.cert;
    return TlsContext::client(options);
  }
};

// 1 MiB with a position-dependent pattern: a lost, repeated or reordered record shows.
std::string patterned(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return bytes;
}

TEST_CASE("tls streams secure a connection and carry bytes both ways", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  f.net.connect(client, server);
  // Writes made before the handshake completes (smtps' banner, a client's first command) wait
  // for it and go out encrypted, first.
  secure_server(server, f.server_tls);
  server.stream->write("220 relay.test ESMTP\r\n");
  secure_client(client, TlsContext::client({}), to_host("relay.test"));
  client.stream->write("EHLO client.test\r\n");
  client.stream->write("NOOP\r\n");
  f.net.run_until([&] {
    return server.received == "EHLO client.test\r\nNOOP\r\n" &&
           client.received == "220 relay.test ESMTP\r\n" && client.writes_done == 2 &&
           server.writes_done == 1;
  });
  for (Recorder* end : {&client, &server}) {
    CHECK(end->secured == 1);
    CHECK(end->info.version == "TLSv1.3");
    CHECK_FALSE(end->info.cipher.empty());
    CHECK(end->info.bits >= 128);
    CHECK_FALSE(end->info.resumed);
    CHECK(end->reads_before_secured == 0);  // nothing in plaintext before the handshake
  }

  // Several TLS records one way, many small writes the other, at the same time.
  const std::string big = patterned(1 << 20);
  client.stream->write(big);
  std::string lines;
  for (int i = 0; i < 500; ++i) {
    const std::string line = "250-line " + std::to_string(i) + "\r\n";
    lines += line;
    server.stream->write(line);
  }
  const std::size_t server_had = server.received.size();
  const std::size_t client_had = client.received.size();
  f.net.run_until([&] {
    return server.received.size() >= server_had + big.size() &&
           client.received.size() >= client_had + lines.size() && client.writes_done == 3 &&
           server.writes_done == 501;
  });
  CHECK(server.received.size() == server_had + big.size());
  CHECK((server.received.compare(server_had, std::string::npos, big) == 0));
  CHECK(client.received.substr(client_had) == lines);

  // One more round trip: a stray or repeated stream_written() would have shown by now.
  client.stream->write("QUIT\r\n");
  f.net.run_until([&] { return server.received.ends_with("QUIT\r\n"); });
  server.stream->write("221 bye\r\n");
  f.net.run_until([&] { return client.received.ends_with("221 bye\r\n"); });
  f.net.run_until([&] { return client.writes_done == 4 && server.writes_done == 502; });
  CHECK(client.writes_done == 4);
  CHECK(server.writes_done == 502);
  CHECK(client.ended == 0);
  CHECK(server.ended == 0);

  client.close();
  server.close();
  f.net.run_until([&] { return client.closed > 0 && server.closed > 0; });
  CHECK(client.closed == 1);
  CHECK(server.closed == 1);
}

TEST_CASE("tls clients verify the certificate and the name of the server", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  std::string host;
  SECTION("by host name") {
    host = "relay.test";
  }
  SECTION("by IP literal") {
    host = "127.0.0.1";
  }
  f.net.connect_tls(client, server, f.server_tls, f.verifying_client(), to_host(host));
  f.net.run_until([&] { return f.net.handshaken(client, server); });
  REQUIRE(client.error.empty());
  CHECK(client.secured == 1);
  CHECK(client.info.verified);
  // Verified and working: bytes go through.
  client.stream->write("EHLO client.test\r\n");
  f.net.run_until([&] { return server.received == "EHLO client.test\r\n"; });
}

TEST_CASE("tls clients refuse a server whose certificate names another host", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  std::string host;
  SECTION("another host name") {
    host = "other.test";
  }
  SECTION("another IP literal") {
    host = "127.0.0.2";
  }
  f.net.connect_tls(client, server, f.server_tls, f.verifying_client(), to_host(host));
  f.net.run_until([&] { return client.closed > 0 && server.closed > 0; });
  CHECK(client.secured == 0);
  CHECK(client.ended == 1);
  CHECK_THAT(client.error, StartsWith("TLS handshake failed") && Contains("certificate"));
  // The server hears of it (the client's alert, or its hanging up) as a failed handshake.
  CHECK(server.ended == 1);
  CHECK_THAT(server.error, StartsWith("TLS handshake failed"));
  CHECK(server.received.empty());
}

TEST_CASE("tls clients without a CA file encrypt without verifying", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  // A name the certificate does not carry: opportunistic TLS does not care.
  f.net.connect_tls(client, server, f.server_tls, TlsContext::client({}), to_host("other.test"));
  f.net.run_until([&] { return f.net.handshaken(client, server); });
  REQUIRE(client.error.empty());
  CHECK(client.secured == 1);
  CHECK_FALSE(client.info.verified);
  server.stream->write("220 relay.test ESMTP\r\n");
  f.net.run_until([&] { return client.received == "220 relay.test ESMTP\r\n"; });
}

TEST_CASE("tls servers with a TLS 1.3 floor refuse a TLS 1.2 client", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  auto client_tls = TlsContext::client({});
  REQUIRE(SSL_CTX_set_max_proto_version(client_tls->get(), TLS1_2_VERSION) == 1);
  SECTION("a TLS 1.3 floor: both ends fail the handshake") {
    f.net.connect_tls(client, server,
                      TlsContext::server(server_options(f.certificate, TlsVersion::tls1_3)),
                      client_tls, to_host("relay.test"));
    f.net.run_until([&] { return client.closed > 0 && server.closed > 0; });
    CHECK(client.secured + server.secured == 0);
    CHECK(client.ended == 1);
    CHECK(server.ended == 1);
    CHECK_THAT(client.error, StartsWith("TLS handshake failed"));
    CHECK_THAT(server.error, StartsWith("TLS handshake failed"));
  }
  SECTION("the default floor: the same client gets TLS 1.2") {
    f.net.connect_tls(client, server, f.server_tls, client_tls, to_host("relay.test"));
    f.net.run_until([&] { return client.secured > 0 && server.secured > 0; });
    CHECK(client.info.version == "TLSv1.2");
    CHECK(server.info.version == "TLSv1.2");
    client.stream->write("EHLO client.test\r\n");
    f.net.run_until([&] { return server.received == "EHLO client.test\r\n"; });
  }
}

TEST_CASE("tls clients resume a session kept in the session cache", "[net][tls]") {
  TlsSessionCache cache;  // outlives the streams that keep sessions in it
  Fixture f;
  auto client_tls = f.verifying_client();
  const TlsStream::ClientOptions options =
      to_host("relay.test", &cache, "relay.test:" + std::to_string(f.net.port()));

  Recorder& first_client = f.net.recorder();
  Recorder& first_server = f.net.recorder();
  f.net.connect_tls(first_client, first_server, f.server_tls, client_tls, options);
  // TLS 1.3 sends its tickets after the handshake: a round trip makes sure they were read.
  first_client.stream->write("EHLO client.test\r\n");
  f.net.run_until([&] { return first_server.received == "EHLO client.test\r\n"; });
  first_server.stream->write("250 relay.test\r\n");
  f.net.run_until([&] { return first_client.received == "250 relay.test\r\n"; });
  CHECK_FALSE(first_client.info.resumed);
  CHECK(first_client.info.verified);
  CHECK(cache.size() == 1);
  // An abrupt end, as a next hop that says 421 and hangs up: the kept session still resumes.
  first_client.close();
  f.net.run_until([&] { return first_client.closed > 0 && first_server.closed > 0; });

  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  f.net.connect_tls(client, server, f.server_tls, client_tls, options);
  f.net.run_until([&] { return f.net.handshaken(client, server); });
  REQUIRE(client.error.empty());
  CHECK(client.info.resumed);
  CHECK(server.info.resumed);
  CHECK(client.info.verified);  // the resumed session was verified when it was made
  client.stream->write("EHLO client.test\r\n");
  f.net.run_until([&] { return server.received == "EHLO client.test\r\n"; });

  SECTION("another key finds nothing to resume") {
    Recorder& other = f.net.recorder();
    Recorder& other_server = f.net.recorder();
    f.net.connect_tls(other, other_server, f.server_tls, client_tls,
                      to_host("relay.test", &cache, "elsewhere:25"));
    f.net.run_until([&] { return f.net.handshaken(other, other_server); });
    CHECK_FALSE(other.info.resumed);
  }
}

TEST_CASE("tls streams closed after their writes deliver them, then the peer sees the end",
          "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  f.net.connect_tls(client, server, f.server_tls, TlsContext::client({}), to_host("relay.test"));
  f.net.run_until([&] { return client.secured > 0 && server.secured > 0; });
  const std::string big = patterned(256 << 10);
  server.stream->write(big);
  server.stream->write("421 4.3.2 bye\r\n");
  server.stream->close_after_writes();
  f.net.run_until([&] { return client.ended > 0 && server.closed > 0; });
  CHECK(client.received.size() == big.size() + 15);
  CHECK((client.received.compare(0, big.size(), big) == 0));
  CHECK(client.received.ends_with("421 4.3.2 bye\r\n"));
  CHECK(client.error.empty());  // close_notify: an orderly end, not an error
  f.net.run_until([&] { return client.closed > 0; });
  CHECK(client.closed == 1);
  CHECK(server.closed == 1);
  CHECK(server.ended == 0);
}

// smtps: a server too busy for another connection says 421 and closes, before the client has
// finished its handshake; the 421 must still reach the client (encrypted, once the handshake
// completes) rather than vanish.
TEST_CASE("tls streams closed after their writes during the handshake close at once",
          "[net][tls]") {
  // Nobody to write to before the handshake: waiting for a peer that may never finish it
  // would hold the connection. The early writes go with the stream.
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  f.net.connect_tls(client, server, f.server_tls, TlsContext::client({}), to_host("relay.test"));
  server.stream->write("421 4.3.2 too busy\r\n");
  server.stream->close_after_writes();
  f.net.run_until([&] { return client.ended > 0 && server.closed > 0; });
  CHECK(client.received.empty());
  CHECK_THAT(client.error, StartsWith("TLS handshake failed"));
  CHECK(server.closed == 1);
}

TEST_CASE("tls streams closed mid-handshake are freed once; the peer hears it failed",
          "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  f.net.connect_tls(client, server, f.server_tls, TlsContext::client({}), to_host("relay.test"));
  client.stream->write("EHLO client.test\r\n");  // dropped with the stream
  client.close();
  f.net.run_until([&] { return client.closed > 0 && server.closed > 0; });
  CHECK(client.closed == 1);
  CHECK(client.ended == 0);  // the user closed it: nothing to tell
  CHECK(server.closed == 1);
  CHECK(server.ended == 1);
  CHECK_THAT(server.error, StartsWith("TLS handshake failed"));
  CHECK(server.received.empty());
}

TEST_CASE("tls servers given plaintext instead of a ClientHello end the stream", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();  // a plain TCP client: an SMTP client that forgot TLS
  Recorder& server = f.net.recorder();
  f.net.connect(client, server);
  secure_server(server, f.server_tls);
  client.stream->start_reading();
  client.stream->write("EHLO x\r\n");
  f.net.run_until([&] { return server.closed > 0 && client.ended > 0; });
  CHECK(server.ended == 1);
  CHECK_THAT(server.error, StartsWith("TLS handshake failed"));
  CHECK(server.received.empty());
  CHECK(server.secured == 0);
}

// An opportunistic client does not check the certificate, yet OpenSSL still records the result
// of checking it (here "self-signed certificate"). A handshake that fails for another reason
// after the Certificate (a record damaged on the way: "bad record mac") must say that reason,
// not blame a certificate nobody asked to verify: the attempt history and the logs show it.
TEST_CASE("tls clients that do not verify do not blame the certificate for other failures",
          "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& front = f.net.recorder();  // a middle box, facing the client
  Recorder& back = f.net.recorder();   // the same, facing the server
  Recorder& server = f.net.recorder();
  f.net.connect(client, front);
  f.net.connect(back, server);
  secure_server(server, f.server_tls);
  front.on_read = [&](std::string_view bytes) { back.stream->write(std::string(bytes)); };
  // The server's third encrypted record (CertificateVerify, after EncryptedExtensions and
  // Certificate) gets a flipped bit in its tag; the rest passes as it is.
  std::string held;
  bool damaged = false;
  back.on_read = [&](std::string_view bytes) {
    if (damaged) return front.stream->write(std::string(bytes));
    held.append(bytes);
    int encrypted = 0;
    for (std::size_t at = 0; at + 5 <= held.size();) {
      const std::size_t length =
          static_cast<std::uint8_t>(held[at + 3]) << 8 | static_cast<std::uint8_t>(held[at + 4]);
      if (at + 5 + length > held.size()) return;  // the rest of it is still to come
      const bool application_data = held[at] == 23;
      at += 5 + length;
      if (application_data && ++encrypted == 3) {
        held[at - 1] = static_cast<char>(held[at - 1] ^ 1);
        damaged = true;
        return front.stream->write(std::exchange(held, std::string()));
      }
    }
  };
  front.stream->start_reading();
  back.stream->start_reading();
  secure_client(client, TlsContext::client({}), to_host("relay.test"));
  f.net.run_until([&] { return client.ended > 0; });
  CHECK(damaged);
  CHECK(client.secured == 0);
  CHECK_THAT(client.error, StartsWith("TLS handshake failed"));
  CHECK_THAT(client.error, !Contains("certificate"));
}

// A write made while the user hears of the handshake (an SMTP client's EHLO after STARTTLS)
// goes after the writes queued before it, as every write keeps its order.
TEST_CASE("tls streams keep writes made in stream_secured after the early ones", "[net][tls]") {
  Fixture f;
  Recorder& client = f.net.recorder();
  Recorder& server = f.net.recorder();
  client.on_secured = [&] { client.stream->write("second\r\n"); };
  f.net.connect_tls(client, server, f.server_tls, TlsContext::client({}), to_host("relay.test"));
  client.stream->write("first\r\n");
  f.net.run_until([&] { return server.received.size() >= 15; });
  CHECK(server.received == "first\r\nsecond\r\n");
  f.net.run_until([&] { return client.writes_done == 2; });
}

TEST_CASE("tls contexts name the file that is missing or does not fit", "[net][tls]") {
  test::TempDir dir;
  const TestCertificate certificate = make_certificate(dir.path);
  const std::string missing = (dir.path / "missing.pem").string();
  TestCertificate no_cert = certificate;
  no_cert.cert = missing;
  CHECK_THROWS_WITH(TlsContext::server(server_options(no_cert)), StartsWith("tls.cert " + missing));
  TestCertificate no_key = certificate;
  no_key.key = missing;
  CHECK_THROWS_WITH(TlsContext::server(server_options(no_key)), StartsWith("tls.key " + missing));
  // A key of another certificate.
  const std::filesystem::path other_dir = dir.path / "other";
  std::filesystem::create_directory(other_dir);
  const TestCertificate other = make_certificate(other_dir);
  TestCertificate mismatched = certificate;
  mismatched.key = other.key;
  // (OpenSSL finds the mismatch as it loads the key.)
  CHECK_THROWS_WITH(TlsContext::server(server_options(mismatched)),
                    StartsWith("tls.key " + other.key) && Contains("mismatch"));
  CHECK_THROWS_WITH(TlsContext::client({TlsVersion::tls1_2, missing}),
                    StartsWith("tls_ca " + missing));
  CHECK(parse_tls_version("TLSv1.3") == TlsVersion::tls1_3);
  CHECK_THROWS_AS(parse_tls_version("TLSv1.1"), std::invalid_argument);
}

TEST_CASE("tls session caches keep one session per key and forget the oldest", "[net][tls]") {
  TlsSessionCache cache;
  // Replacing a key's session frees the old one (ASan would report the leak).
  cache.store("a:25", SSL_SESSION_new());
  SSL_SESSION* newer = SSL_SESSION_new();
  cache.store("a:25", newer);
  CHECK(cache.size() == 1);
  CHECK(cache.find("a:25") == newer);
  CHECK(cache.find("b:25") == nullptr);
  for (std::size_t i = 0; i < TlsSessionCache::kMaxEntries; ++i)
    cache.store("host" + std::to_string(i) + ":25", SSL_SESSION_new());
  CHECK(cache.size() == TlsSessionCache::kMaxEntries);
  CHECK(cache.find("a:25") == nullptr);  // the oldest went first
  CHECK(cache.find("host0:25") != nullptr);
  CHECK(cache.find("host1023:25") != nullptr);
}

}  // namespace
}  // namespace relayq::mta::net
