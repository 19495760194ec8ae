// ContentReader: dot-unstuffing, the only end of data, line and byte checks, size, BDAT framing.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mta/smtp/content_reader.hpp"

using relayq::mta::ContentReader;
using Fault = ContentReader::Fault;
using Framing = ContentReader::Framing;

namespace {

struct Outcome {
  std::string body;
  Fault fault = Fault::none;
  bool ended = false;
  std::size_t used = 0;
};

// Feeds `bytes` in pieces of `piece` bytes (0 = all at once), as far as the reader takes them.
Outcome read(std::string_view bytes, std::size_t piece = 0,
             Framing framing = Framing::dot_terminated, std::uint64_t max_size = 1 << 20,
             std::string prefix = "") {
  ContentReader reader(framing, std::move(prefix), max_size, 0);
  Outcome outcome;
  const std::size_t step = piece == 0 ? bytes.size() : piece;
  for (std::size_t pos = 0; pos < bytes.size() && !reader.ended(); pos += step) {
    const std::string_view part = bytes.substr(pos, step);
    const std::size_t used = reader.feed(part);
    outcome.used += used;
    if (used < part.size()) break;
  }
  if (framing == Framing::counted) reader.finish();
  outcome.fault = reader.fault();
  outcome.ended = reader.ended();
  outcome.body = reader.take_body();
  return outcome;
}

}  // namespace

TEST_CASE("DATA content is dot-unstuffed and ends at CRLF.CRLF", "[data_reader]") {
  const std::string input =
      "Subject: x\r\n\r\n..leading\r\n...\r\nend .\r\n.\r\nMAIL FROM:<a@b>\r\n";
  const std::size_t piece = GENERATE(0, 1, 2, 3, 7);
  const Outcome outcome = read(input, piece);
  CHECK(outcome.ended);
  CHECK(outcome.fault == Fault::none);
  CHECK(outcome.body == "Subject: x\r\n\r\n.leading\r\n..\r\nend .\r\n");
  CHECK(outcome.used == input.find("MAIL"));
}

TEST_CASE("empty DATA content ends at once", "[data_reader]") {
  const Outcome outcome = read(".\r\n");
  CHECK(outcome.ended);
  CHECK(outcome.body.empty());
  CHECK(outcome.used == 3);
}

TEST_CASE("the prefix starts the body and does not count towards the size", "[data_reader]") {
  const Outcome outcome =
      read("12345678\r\n.\r\n", 0, Framing::dot_terminated, 10, "Received: x\r\n");
  CHECK(outcome.fault == Fault::none);
  CHECK(outcome.body == "Received: x\r\n12345678\r\n");
}

TEST_CASE("content over the size limit is dropped and read to its end", "[data_reader]") {
  const Outcome outcome =
      read("123456789\r\nmore\r\n.\r\nQUIT\r\n", 1, Framing::dot_terminated, 10);
  CHECK(outcome.ended);
  CHECK(outcome.fault == Fault::too_big);
  CHECK(outcome.body.empty());
  CHECK(outcome.used == 20);
}

// Reads `bytes` whole and in pieces of 1 and 7 bytes with a header limit; the faults found.
std::vector<Fault> header_faults(std::string_view bytes, std::uint64_t max_header_size) {
  std::vector<Fault> faults;
  for (const std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
    ContentReader reader(Framing::dot_terminated, "Received: ours\r\n", 1 << 20, 0,
                         max_header_size);
    const std::size_t step = piece == 0 ? bytes.size() : piece;
    for (std::size_t pos = 0; pos < bytes.size() && !reader.ended(); pos += step)
      reader.feed(bytes.substr(pos, step));
    CHECK(reader.ended());
    faults.push_back(reader.fault());
  }
  return faults;
}

TEST_CASE("the header section is limited up to its empty line, CRLFs counted", "[data_reader]") {
  using Faults = std::vector<Fault>;
  const Faults none(3, Fault::none), too_big(3, Fault::header_too_big);
  // "Subject: a\r\n" + "X: b\r\n" = 18 bytes; the body and the prefix do not count.
  const std::string message = "Subject: a\r\nX: b\r\n\r\n" + std::string(500, 'x') + "\r\n.\r\n";
  CHECK(header_faults(message, 18) == none);
  CHECK(header_faults(message, 17) == too_big);
  // Without an empty line, everything is header.
  CHECK(header_faults("Subject: a\r\n" + std::string(50, 'y') + "\r\n.\r\n", 40) == too_big);
  // A folded header of many lines counts whole.
  std::string folded = "X-Long: a\r\n";
  for (int i = 0; i < 100; ++i) folded += "\tcontinued\r\n";
  CHECK(header_faults(folded + "\r\nbody\r\n.\r\n", 1000) == too_big);
  CHECK(header_faults(folded + "\r\nbody\r\n.\r\n", 2000) == none);
}

TEST_CASE("the expected size reserves the body up front", "[data_reader]") {
  ContentReader reader(Framing::dot_terminated, "H\r\n", 1000, 500);
  reader.feed("x\r\n.\r\n");
  CHECK(reader.take_body().capacity() >= 503);
}

TEST_CASE("text lines are limited to 1000 bytes with CRLF, the stuffed dot not counted",
          "[data_reader]") {
  const std::string longest(998, 'a');
  CHECK(read(longest + "\r\n.\r\n").fault == Fault::none);
  CHECK(read("." + longest + "\r\n.\r\n").fault == Fault::none);
  const Outcome outcome = read(longest + "a\r\nnext\r\n.\r\n", 5);
  CHECK(outcome.ended);
  CHECK(outcome.fault == Fault::line_too_long);
  CHECK(outcome.body.empty());
}

TEST_CASE("bare CR, bare LF and NUL mark the content bad", "[data_reader]") {
  const std::string bad =
      GENERATE(std::string("a\rb\r\n"), std::string("a\nb\r\n"), std::string("a\0b\r\n", 5),
               std::string("a\r\r\n"), std::string("\r\n\r"), std::string("\n"));
  const std::size_t piece = GENERATE(0, 1);
  const Outcome outcome = read("x\r\n" + bad + "\r\n.\r\n", piece);
  CHECK(outcome.ended);
  CHECK(outcome.fault == Fault::bad_bytes);
  CHECK(outcome.body.empty());
}

TEST_CASE("the worst fault wins whatever the order", "[data_reader]") {
  const std::string too_long(1200, 'a');
  CHECK(read(too_long + "\r\nb\nc\r\n.\r\n").fault == Fault::bad_bytes);
  CHECK(read("b\nc\r\n" + too_long + "\r\n.\r\n").fault == Fault::bad_bytes);
  CHECK(read(too_long + "\r\n.\r\n", 0, Framing::dot_terminated, 100).fault ==
        Fault::line_too_long);
}

// CVE-2023-51764 and friends: none of these may end the data, and what follows is content.
TEST_CASE("no end of data other than CRLF.CRLF", "[data_reader][smuggling]") {
  const std::string sequence =
      GENERATE(std::string("\n.\n"), std::string("\n.\r\n"), std::string("\r.\r"),
               std::string("\r.\r\n"), std::string("\r\n.\n"), std::string("\r\n.\r"),
               std::string("\r\n\0.\r\n", 6), std::string("\r\n.\0\r\n", 6));
  const std::size_t piece = GENERATE(0, 1, 2, 3);
  const std::string smuggled = "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\nDATA\r\nevil\r\n";
  const std::string input = "text" + sequence + smuggled + ".\r\nQUIT\r\n";
  const Outcome outcome = read(input, piece);
  CHECK(outcome.ended);
  CHECK(outcome.used == input.size() - 6);
  CHECK(outcome.fault == Fault::bad_bytes);
  CHECK(outcome.body.empty());
}

TEST_CASE("a terminator split anywhere still ends the data", "[data_reader]") {
  const std::string input = "a\r\n.\r\n";
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    ContentReader reader(Framing::dot_terminated, "", 100, 0);
    CHECK(reader.feed(input.substr(0, cut)) == cut);
    CHECK_FALSE(reader.ended());
    CHECK(reader.feed(input.substr(cut)) == input.size() - cut);
    CHECK(reader.ended());
    CHECK(reader.take_body() == "a\r\n");
  }
}

TEST_CASE("counted content keeps dots and has no terminator", "[data_reader][bdat]") {
  const Outcome outcome = read("..a\r\n.\r\nb\r\n", 1, Framing::counted);
  CHECK_FALSE(outcome.ended);
  CHECK(outcome.fault == Fault::none);
  CHECK(outcome.body == "..a\r\n.\r\nb\r\n");
}

TEST_CASE("counted content gets a final CRLF when it lacks one", "[data_reader][bdat]") {
  CHECK(read("a\r\nb", 0, Framing::counted).body == "a\r\nb\r\n");
  CHECK(read("", 0, Framing::counted).body.empty());
}

TEST_CASE("a CR ending the last chunk is a bare CR", "[data_reader][bdat]") {
  ContentReader reader(Framing::counted, "", 100, 0);
  reader.feed("a\r\nb\r");
  CHECK(reader.fault() == Fault::none);
  reader.finish();
  CHECK(reader.fault() == Fault::bad_bytes);
}

TEST_CASE("a CR and its LF may come in different chunks", "[data_reader][bdat]") {
  ContentReader reader(Framing::counted, "", 100, 0);
  reader.feed("a\r");
  reader.feed("\nb\r\n");
  reader.finish();
  CHECK(reader.fault() == Fault::none);
  CHECK(reader.take_body() == "a\r\nb\r\n");
}
