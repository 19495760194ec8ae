// append_dot_stuffed: fixed cases, and random bodies that must never put a bare CR or LF or
// an early "." line on the wire.
#include <catch2/catch.hpp>

#include <random>

#include "mta/smtp/dot_stuffer.hpp"
#include "support/client_session_harness.hpp"

using relayq::mta::append_dot_stuffed;
using relayq::mta::client_testing::check_content;

namespace {

std::string stuffed(std::string_view body) {
  std::string out;
  append_dot_stuffed(body, out);
  return out;
}

}  // namespace

TEST_CASE("dot stuffer fixed cases", "[client_dot_stuffer]") {
  using Case = std::pair<std::string, std::string>;
  const auto [body, wire] = GENERATE(Case{"", ".\r\n"},             //
                                     Case{"a\r\n", "a\r\n.\r\n"},   //
                                     Case{"a", "a\r\n.\r\n"},       //
                                     Case{".", "..\r\n.\r\n"},      //
                                     Case{".\r\n", "..\r\n.\r\n"},  //
                                     Case{"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
                                     Case{"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},  //
                                     Case{"a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},  //
                                     Case{"\r\r\n\n", "\r\n\r\n\r\n.\r\n"},     //
                                     Case{"x\r", "x\r\n.\r\n"},                 //
                                     Case{"..x\r\n", "...x\r\n.\r\n"},          //
                                     Case{"a.b\r\n", "a.b\r\n.\r\n"},           //
                                     Case{"\n.", "\r\n..\r\n.\r\n"});
  INFO(body);
  CHECK(stuffed(body) == wire);
  check_content(wire, body);
}

TEST_CASE("dot stuffer appends to what is there", "[client_dot_stuffer]") {
  std::string out = "prefix";
  append_dot_stuffed("x", out);
  CHECK(out == "prefixx\r\n.\r\n");
}

TEST_CASE("dot stuffer property on random bodies", "[client_dot_stuffer]") {
  std::mt19937 random(7);
  std::uniform_int_distribution<int> length(0, 2000);
  // Mostly the dangerous bytes, and long runs of bare CR to catch quadratic rescans.
  const std::string_view alphabet = "\r\n.\r\n.x";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    for (int n = length(random); n > 0; --n) body.push_back(alphabet[pick(random)]);
    INFO("round " << round);
    check_content(stuffed(body), body);
  }
}

TEST_CASE("dot stuffer handles large bodies of bare CRs in linear time", "[client_dot_stuffer]") {
  const std::string body(4 << 20, '\r');
  const std::string wire = stuffed(body + "\n");
  CHECK(wire.size() == body.size() * 2 + 3);
}
