// ReplyParser: single and multi-line replies, tolerated bare LF, every malformation, and any
// split of the input giving the same replies.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mta/smtp/reply_parser.hpp"

using relayq::mta::ReplyParser;
using Outcome = ReplyParser::Outcome;

namespace {

// Feeds `input` in pieces of `piece` bytes and collects every outcome but need_more, as
// "code|text" or "error|text".
std::vector<std::string> parse(std::string_view input, std::size_t piece = 0) {
  ReplyParser parser;
  std::vector<std::string> seen;
  const std::size_t step = piece == 0 ? std::max<std::size_t>(input.size(), 1) : piece;
  for (std::size_t pos = 0; pos < input.size(); pos += step) {
    parser.feed(input.substr(pos, step));
    for (;;) {
      auto parsed = parser.next();
      if (parsed.outcome == Outcome::need_more) break;
      if (parsed.outcome == Outcome::malformed) {
        seen.push_back("error|" + parsed.reply.text);
        return seen;
      }
      seen.push_back(std::to_string(parsed.reply.code) + "|" + parsed.reply.text);
    }
  }
  return seen;
}

}  // namespace

TEST_CASE("reply parser reads single and multi-line replies", "[client_reply_parser]") {
  const std::string input =
      "220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n354\r\n"
      "250-a\r\n250\r\n";
  const std::vector<std::string> expected = {"220|220 mx.test ESMTP",
                                             "250|250-mx.test\n250-PIPELINING\n250 SIZE 10",
                                             "354|354", "250|250-a\n250"};
  CHECK(parse(input) == expected);
  for (std::size_t piece = 1; piece < 12; ++piece) {
    INFO("pieces of " << piece);
    CHECK(parse(input, piece) == expected);
  }
}

TEST_CASE("reply parser tolerates bare LF line ends", "[client_reply_parser]") {
  CHECK(parse("250-a\n250 b\r\n451 x\n") ==
        std::vector<std::string>{"250|250-a\n250 b", "451|451 x"});
}

TEST_CASE("reply parser waits for the last line", "[client_reply_parser]") {
  ReplyParser parser;
  parser.feed("250-a\r\n250 b");
  CHECK(parser.next().outcome == Outcome::need_more);
  parser.feed("\r");
  CHECK(parser.next().outcome == Outcome::need_more);
  parser.feed("\n");
  const auto parsed = parser.next();
  CHECK(parsed.outcome == Outcome::reply);
  CHECK(parsed.reply.text == "250-a\n250 b");
  CHECK(parser.next().outcome == Outcome::need_more);
}

TEST_CASE("reply parser refuses malformed replies", "[client_reply_parser]") {
  using Case = std::pair<std::string, std::string>;
  const auto [input, error] = GENERATE(
      Case{"HTTP/1.1 400 Bad\r\n", "protocol error: malformed reply \"HTTP/1.1 400 Bad\""},
      Case{"25 short\r\n", "protocol error: malformed reply \"25 short\""},
      Case{"\r\n", "protocol error: malformed reply \"\""},
      Case{"250_underscore\r\n", "protocol error: malformed reply \"250_underscore\""},
      Case{"150 preliminary\r\n", "protocol error: malformed reply \"150 preliminary\""},
      Case{"650 nonsense\r\n", "protocol error: malformed reply \"650 nonsense\""},
      Case{"2x0 letters\r\n", "protocol error: malformed reply \"2x0 letters\""},
      Case{"250 bare\rcr\r\n", "protocol error: bare CR or NUL in reply \"250 bare?cr\""},
      Case{std::string("250 n\0l\r\n", 9), "protocol error: bare CR or NUL in reply \"250 n?l\""},
      Case{"250-a\r\n550 b\r\n", "protocol error: reply code changed within a reply \"550 b\""});
  INFO(input);
  CHECK(parse(input) == std::vector<std::string>{"error|" + error});
  CHECK(parse(input, 1) == std::vector<std::string>{"error|" + error});
}

TEST_CASE("reply parser bounds lines and replies", "[client_reply_parser]") {
  SECTION("a line without end") {
    const auto seen = parse("250 " + std::string(ReplyParser::kMaxLine, 'x'), 100);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].starts_with("error|protocol error: reply line too long \"250 xxx"));
  }
  SECTION("a long line that ends in one piece") {
    const auto seen = parse("250 " + std::string(ReplyParser::kMaxLine, 'x') + "\r\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].starts_with("error|protocol error: reply line too long"));
  }
  SECTION("too many lines") {
    std::string input;
    while (input.size() <= ReplyParser::kMaxReply + 1000)
      input += "250-" + std::string(90, 'y') + "\r\n";
    const auto seen = parse(input + "250 end\r\n", 1000);
    REQUIRE(seen.size() == 1);
    CHECK_THAT(seen[0], Catch::StartsWith("error|protocol error: reply too long"));
  }
  SECTION("a line at the limit is fine") {
    const std::string line = "250 " + std::string(ReplyParser::kMaxLine - 4, 'z');
    CHECK(parse(line + "\r\n", 7) == std::vector<std::string>{"250|" + line});
  }
}

TEST_CASE("reply parser stays failed after an error", "[client_reply_parser]") {
  ReplyParser parser;
  parser.feed("junk\r\n");
  CHECK(parser.next().outcome == Outcome::malformed);
  parser.feed("250 fine\r\n");
  const auto parsed = parser.next();
  CHECK(parsed.outcome == Outcome::malformed);
  CHECK(parsed.reply.code == 0);
  CHECK(parsed.reply.text == "protocol error: malformed reply \"junk\"");
}
