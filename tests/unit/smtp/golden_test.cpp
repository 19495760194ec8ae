// Golden SMTP dialogues: golden/NAME.in is what the client sends, golden/NAME.ref the transcript
// the server must produce, whether the input arrives at once, byte by byte or in pieces.
//
// In .in files every line is sent with CRLF appended, unless it ends in \c. Escapes: \r \n
// \0 \\ \xHH. Lines starting with "@@ " are directives:
//   @@ peer IP | @@ max_message_size N | @@ max_recipients N   (before any input)
//   @@ store ok|no_space|io_error|shutting_down   (the result of the next store; ok by default)
//   @@ timeout | @@ shutdown                      (call timed_out() / shut_down() at this point)
// The .ref transcript holds the replies, one line each; "@@ message ID from SENDER to RCPTS"
// and "@@ | line" for each content line (after the Received header) of each queued message;
// then "@@ path FROM -> TO" for each change of state, and "@@ state NAME" at the end.
// RELAYQ_GOLDEN_UPDATE=1 in the environment rewrites each .ref from the run at once (review
// the diff before committing it).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/session_harness.hpp"

namespace fs = std::filesystem;
namespace queue = relayq::queue;
using relayq::mta::ServerSessionConfig;
using relayq::mta::SessionState;
using relayq::mta::testing::Client;
using relayq::mta::testing::content_of;

namespace {

struct Step {
  std::string bytes;      // sent first
  std::string directive;  // then run: "timeout", "shutdown" or "" at the end
};

struct Script {
  std::string peer = "127.0.0.1";
  std::uint64_t max_message_size = 10000;
  std::uint32_t max_recipients = 3;
  std::deque<queue::StoreResult> results;
  std::vector<Step> steps;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string unescape(std::string_view line) {
  std::string bytes;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\' || i + 1 == line.size()) {
      bytes += line[i];
      continue;
    }
    const char code = line[++i];
    switch (code) {
      case 'r':
        bytes += '\r';
        break;
      case 'n':
        bytes += '\n';
        break;
      case '0':
        bytes += '\0';
        break;
      case 'x':
        bytes += static_cast<char>(std::stoi(std::string(line.substr(i + 1, 2)), nullptr, 16));
        i += 2;
        break;
      default:
        bytes += code;
        break;
    }
  }
  return bytes;
}

queue::StoreResult store_result(std::string_view word) {
  if (word == "no_space") return {queue::StoreErrorKind::no_space, "test"};
  if (word == "io_error") return {queue::StoreErrorKind::io_error, "test"};
  if (word == "shutting_down") return {queue::StoreErrorKind::shutting_down, "test"};
  REQUIRE(word == "ok");
  return {};
}

Script parse_script(const std::string& text) {
  Script script;
  script.steps.emplace_back();
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("@@ ", 0) != 0) {
      const bool open = line.size() >= 2 && line.compare(line.size() - 2, 2, "\\c") == 0;
      script.steps.back().bytes += unescape(open ? line.substr(0, line.size() - 2) : line);
      if (!open) script.steps.back().bytes += "\r\n";
      continue;
    }
    std::istringstream words(line.substr(3));
    std::string name, value;
    words >> name >> value;
    if (name == "peer") {
      script.peer = value;
    } else if (name == "max_message_size") {
      script.max_message_size = std::stoull(value);
    } else if (name == "max_recipients") {
      script.max_recipients = static_cast<std::uint32_t>(std::stoul(value));
    } else if (name == "store") {
      script.results.push_back(store_result(value));
    } else {
      REQUIRE((name == "timeout" || name == "shutdown"));
      script.steps.back().directive = name;
      script.steps.emplace_back();
    }
  }
  return script;
}

// Replies one per line; a CR or LF that is not part of a CRLF shows as an escape.
std::string transcribe(std::string_view output) {
  std::string text;
  for (std::size_t i = 0; i < output.size(); ++i) {
    if (output.substr(i, 2) == "\r\n") {
      text += '\n';
      ++i;
    } else if (output[i] == '\r' || output[i] == '\n') {
      text += output[i] == '\r' ? "\\r" : "\\n";
    } else {
      text += output[i];
    }
  }
  return text;
}

std::string describe(const queue::Message& message) {
  std::string text = "@@ message " + queue::format_id(message.envelope.id) + " from <" +
                     message.envelope.sender + "> to";
  for (const auto& recipient : message.envelope.recipients) text += " <" + recipient.address + ">";
  text += '\n';
  const std::string content = content_of(message);
  // Queued content always ends in CRLF.
  for (std::size_t pos = 0, end; (end = content.find("\r\n", pos)) != std::string::npos;
       pos = end + 2)
    text += "@@ | " + transcribe(content.substr(pos, end - pos)) + '\n';
  return text;
}

// Runs the script feeding `piece` bytes at a time (0 = each step's bytes at once).
std::string run(const Script& script, std::size_t piece) {
  Client client(script.peer, [&](ServerSessionConfig& config) {
    config.max_message_size = script.max_message_size;
    config.max_recipients = script.max_recipients;
  });
  client.auto_store = false;
  auto results = script.results;
  std::string transcript = transcribe(client.start());
  auto settle = [&] {
    transcript += transcribe(client.session->take_output());
    while (auto message = client.session->take_message()) {
      transcript += describe(*message);
      queue::StoreResult result;
      if (!results.empty()) {
        result = results.front();
        results.pop_front();
      }
      client.session->message_stored(result, client.now);
      transcript += transcribe(client.session->take_output());
    }
  };
  for (const Step& step : script.steps) {
    const std::string_view bytes = step.bytes;
    const std::size_t step_size = piece == 0 ? std::max<std::size_t>(bytes.size(), 1) : piece;
    for (std::size_t pos = 0; pos < bytes.size(); pos += step_size) {
      client.session->receive(bytes.substr(pos, step_size), client.now);
      settle();
    }
    if (step.directive == "timeout") client.session->timed_out(client.now);
    if (step.directive == "shutdown") client.session->shut_down();
    settle();
  }
  for (const std::string& change : client.observer->path) transcript += "@@ path " + change + '\n';
  transcript += "@@ state " + std::string(to_string(client.session->state())) + '\n';
  return transcript;
}

}  // namespace

TEST_CASE("golden dialogues", "[server_session][golden]") {
  const fs::path folder = fs::path(__FILE__).parent_path() / "golden";
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().extension() == ".in") inputs.push_back(entry.path());
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 6);
  for (const fs::path& input : inputs) {
    DYNAMIC_SECTION(input.stem().string()) {
      const Script script = parse_script(read_file(input));
      fs::path reference = input;
      reference.replace_extension(".ref");
      if (std::getenv("RELAYQ_GOLDEN_UPDATE") != nullptr)
        std::ofstream(reference, std::ios::binary) << run(script, 0);
      const std::string expected = read_file(reference);
      for (const std::size_t piece : {0, 1, 2, 3, 7, 64}) {
        INFO("piece size " << piece);
        CHECK(run(script, piece) == expected);
      }
    }
  }
}
