// logfmt quoting, logfmt-to-JSON conversion, and the spdlog formatters for both line formats.
#include "mta/common/log_format.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace relayq::mta {

namespace {

bool is_bare(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return false;
  }
  return true;
}

// "2026-11-23T08:00:00.123Z"
std::string utc_time(spdlog::log_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t t = seconds.count();
  std::tm utc{};
  gmtime_r(&t, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     millis.count());
}

// Reads one logfmt value at `pos` (bare, or quoted with escapes); false when malformed.
bool read_value(std::string_view payload, std::size_t& pos, std::string& value) {
  value.clear();
  if (pos < payload.size() && payload[pos] == '"') {
    for (++pos; pos < payload.size(); ++pos) {
      const char c = payload[pos];
      if (c == '"') {
        ++pos;
        return pos == payload.size() || payload[pos] == ' ';
      }
      if (c == '\\' && pos + 1 < payload.size()) {
        const char next = payload[++pos];
        value.push_back(next == 'n' ? '\n' : next == 'r' ? '\r' : next == 't' ? '\t' : next);
      } else {
        value.push_back(c);
      }
    }
    return false;
  }
  const auto end = payload.find(' ', pos);
  value.assign(payload.substr(pos, end == std::string_view::npos ? end : end - pos));
  pos = end == std::string_view::npos ? payload.size() : end;
  return value.find('"') == std::string::npos;
}

class LineFormatter : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(message.payload.data(), message.payload.size());
    const auto level = spdlog::level::to_string_view(message.level);
    std::string line;
    if (format_ == LogFormat::json) {
      line = fmt::format("{{\"time\":\"{}\",\"level\":\"{}\",{}}}\n", utc_time(message.time),
                         std::string_view(level.data(), level.size()),
                         logfmt_to_json_members(payload));
    } else {
      line = fmt::format("time={} level={} ", utc_time(message.time),
                         std::string_view(level.data(), level.size()));
      // relayq's own lines are events in logfmt already; a library's are free text.
      if (payload.rfind("event=", 0) == 0) {
        line.append(payload);
      } else {
        line += "msg=";
        append_logfmt_value(line, payload);
      }
      line.push_back('\n');
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

void append_logfmt_value(std::string& out, std::string_view text) {
  if (is_bare(text)) {
    out.append(text);
    return;
  }
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.push_back(c);
    }
  }
  out.push_back('"');
}

std::string logfmt_to_json_members(std::string_view payload) {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  std::size_t pos = 0;
  std::string value;
  bool ok = !payload.empty();
  while (ok && pos < payload.size()) {
    const auto equals = payload.find('=', pos);
    if (equals == std::string_view::npos || equals == pos) {
      ok = false;
      break;
    }
    const std::string key(payload.substr(pos, equals - pos));
    if (!is_bare(key)) {
      ok = false;
      break;
    }
    pos = equals + 1;
    ok = read_value(payload, pos, value);
    object[key] = value;
    while (pos < payload.size() && payload[pos] == ' ') ++pos;
  }
  if (!ok) object = {{"msg", std::string(payload)}};
  const std::string text = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return text.substr(1, text.size() - 2);
}

void setup_logging(LogFormat format, spdlog::level::level_enum level) {
  auto logger = spdlog::get("relayq");
  if (!logger) logger = spdlog::stderr_logger_mt("relayq");
  logger->set_formatter(std::make_unique<LineFormatter>(format));
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace relayq::mta
