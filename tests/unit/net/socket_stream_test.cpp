// net::SocketStream on a real loopback socket: connect and accept, bytes both ways, writes that
// outlast the socket buffer, the end of the peer, and closing after the last write.
#include <uv.h>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "dns/ip_address.hpp"
#include "mta/net/listen_socket.hpp"
#include "mta/net/socket_stream.hpp"

namespace relayq::mta::net {
namespace {

// Records what a stream tells; closes the stream when its peer ends, as the connections do.
struct Recorder : StreamEvents {
  void stream_connected(int status) override { connect_status = status; }
  void stream_read(std::string_view bytes) override { received.append(bytes); }
  void stream_written() override { ++writes_done; }
  void stream_ended(std::string_view why) override {
    ended = true;
    error = why;
    stream->close();
  }
  void stream_closed() override { closed = true; }

  Stream* stream = nullptr;
  int connect_status = 1;
  std::string received;
  int writes_done = 0;
  bool ended = false;
  std::string error;
  bool closed = false;
};

struct Pair {
  Pair() {
    uv_loop_init(&loop);
    const int fd = open_listen_socket("127.0.0.1", 0);
    uv_tcp_init(&loop, &listener);
    uv_tcp_open(&listener, fd);
    listener.data = this;
    uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 8, [](uv_stream_t* server, int) {
      auto* pair = static_cast<Pair*>(server->data);
      pair->server.stream = SocketStream::accept(server, pair->server);
    });
    sockaddr_storage bound{};
    int length = sizeof(bound);
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &length);
    const auto port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    const sockaddr_storage address = dns::IpAddress::parse("127.0.0.1")->to_sockaddr(port);
    int error = 0;
    client.stream =
        SocketStream::connect(&loop, reinterpret_cast<const sockaddr&>(address), client, error);
    REQUIRE(error == 0);
    run_until([&] { return client.connect_status == 0 && server.stream != nullptr; });
  }
  ~Pair() {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }

  template <class Done>
  void run_until(Done done) {
    for (int i = 0; i < 100000 && !done(); ++i) uv_run(&loop, UV_RUN_ONCE);
    REQUIRE(done());
  }

  uv_loop_t loop{};
  uv_tcp_t listener{};
  Recorder client;
  Recorder server;
};

TEST_CASE("tcp streams carry bytes both ways and report each write", "[net]") {
  Pair pair;
  pair.server.stream->start_reading();
  pair.client.stream->start_reading();
  pair.client.stream->write("EHLO relay.test\r\n");
  pair.run_until([&] { return pair.server.received == "EHLO relay.test\r\n"; });
  CHECK(pair.client.writes_done == 1);
  // More than a socket buffer holds: queued, in order, reported once when all of it left.
  const std::string big(8 << 20, 'x');
  pair.server.stream->write(big);
  pair.server.stream->write("end\r\n");
  pair.run_until([&] { return pair.client.received.size() == big.size() + 5; });
  CHECK(pair.client.received.ends_with("xend\r\n"));
  CHECK(pair.server.writes_done == 2);
  pair.client.stream->close();
  pair.server.stream->close();
  pair.run_until([&] { return pair.client.closed && pair.server.closed; });
}

TEST_CASE("tcp streams close after their last write, and the peer sees the end", "[net]") {
  Pair pair;
  pair.client.stream->start_reading();
  pair.server.stream->write("421 4.3.2 bye\r\n");
  pair.server.stream->close_after_writes();
  pair.run_until([&] { return pair.client.ended && pair.server.closed; });
  CHECK(pair.client.received == "421 4.3.2 bye\r\n");
  CHECK(pair.client.error.empty());  // an orderly end, not an error
  pair.run_until([&] { return pair.client.closed; });
}

TEST_CASE("tcp streams report a refused connect", "[net]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder client;
  int error = 0;
  // Port 9 (discard) is closed on a test machine: the kernel refuses at once.
  const sockaddr_storage address = dns::IpAddress::parse("127.0.0.1")->to_sockaddr(9);
  client.stream =
      SocketStream::connect(&loop, reinterpret_cast<const sockaddr&>(address), client, error);
  REQUIRE(error == 0);
  while (client.connect_status == 1 && uv_run(&loop, UV_RUN_ONCE) != 0) {
  }
  CHECK(client.connect_status == UV_ECONNREFUSED);
  client.stream->close();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(client.closed);
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace relayq::mta::net
