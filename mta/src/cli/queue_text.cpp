// Human-readable renderings of the admin API's JSON.
#include "mta/cli/queue_text.hpp"

#include <fmt/core.h>

#include <ctime>
#include <string_view>

namespace relayq::mta {

namespace {

using json = nlohmann::ordered_json;

constexpr std::size_t kIdWidth = 16;
constexpr std::size_t kAgeWidth = 7;
constexpr std::size_t kNextWidth = 7;
constexpr std::size_t kAddressWidth = 30;
constexpr std::size_t kErrorWidth = 60;

// Replies and HELO names come from remote peers: control bytes (a terminal escape, a CRLF of
// a multi-line reply) must not reach the terminal.
std::string printable(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
std::size_t width_of(std::string_view text) {
  std::size_t width = 0;
  for (const char c : text) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return width;
}

// At most `width` characters, the end replaced by "..." when cut; never splits a character.
std::string truncated(std::string_view text, std::size_t width) {
  if (width_of(text) <= width) return std::string(text);
  std::size_t kept = 0;
  std::size_t end = 0;
  while (end < text.size()) {
    const bool starts_char = (static_cast<unsigned char>(text[end]) & 0xC0) != 0x80;
    if (starts_char && kept++ == width - 3) break;
    ++end;
  }
  return std::string(text.substr(0, end)) + "...";
}

// A column: printable, truncated to `width` and padded to it.
std::string column(std::string_view text, std::size_t width) {
  auto cell = truncated(printable(text), width);
  cell.append(width - width_of(cell), ' ');
  return cell;
}

std::string right(std::string_view text, std::size_t width) {
  const auto size = width_of(text);
  return (size < width ? std::string(width - size, ' ') : std::string()) + std::string(text);
}

std::string sender_text(const json& message) {
  const auto sender = message.value("sender", std::string());
  return sender.empty() ? "<>" : sender;
}

// "2024-05-01 12:00:00 UTC"
std::string format_time(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string next_attempt_text(std::int64_t due_ms, std::int64_t now_ms) {
  return due_ms <= now_ms ? "next attempt due now"
                          : "next attempt in " + format_duration(due_ms - now_ms);
}

// " (rule default)", " (rule retry.domains."slow.example")": which retry rule set the next
// attempt time; empty when none did (a first attempt, or one `queue retry` made due now).
std::string retry_rule_text(const json& recipient) {
  const auto& rule = recipient.contains("retry_rule") ? recipient["retry_rule"] : json();
  if (!rule.is_string()) return "";
  const auto name = rule.get<std::string>();
  return name == "default" ? " (rule default)"
                           : " (rule retry.domains.\"" + printable(name) + "\")";
}

std::string plural(std::uint64_t count, std::string_view word) {
  return fmt::format("{} {}{}", count, word, count == 1 ? "" : "s");
}

// One recipient: its state line, then its attempts; a pending one ends with when it is next
// tried.
std::string recipient_text(const json& recipient, bool held, std::int64_t now_ms) {
  const auto state = recipient.value("state", std::string());
  const auto attempts = recipient.value("attempts", std::uint64_t{0});
  const bool pending = state == "pending";
  std::string out = printable(recipient.value("address", std::string())) + ": " + state;
  if (attempts == 0) {
    out += pending ? ", no attempt yet" : "";
  } else {
    out += (pending ? ", " : " after ") + plural(attempts, "attempt");
  }
  out += "\n";
  const std::string next =
      !pending ? ""
      : held   ? "held: no attempt until released"
               : next_attempt_text(recipient.value("next_attempt_ms", now_ms), now_ms) +
                   retry_rule_text(recipient);
  const auto& history = recipient.contains("history") ? recipient["history"] : json::array();
  // Numbered from the end, so that the numbers stay right if older attempts were dropped.
  const auto first = attempts >= history.size() ? attempts - history.size() + 1 : 1;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& attempt = history[i];
    const auto nexthop = attempt.value("nexthop", std::string());
    const auto tls = attempt.value("tls", std::string());
    const auto category = attempt.value("category", std::string());
    out += fmt::format("  attempt {} at {} {}{}: {}{}", first + i,
                       format_time(attempt.value("time_ms", std::int64_t{0})),
                       nexthop.empty() ? "(no connection)" : "via " + printable(nexthop),
                       nexthop.empty() ? ""
                       : tls.empty()   ? " (plaintext)"
                                       : " (" + tls + ")",
                       category.empty() ? "" : "[" + printable(category) + "] ",
                       printable(attempt.value("reply", std::string())));
    out += i + 1 == history.size() && !next.empty() ? "; " + next + "\n" : "\n";
  }
  if (history.empty() && !next.empty()) out += "  " + next + "\n";
  return out;
}

}  // namespace

std::string format_duration(std::int64_t ms) {
  const std::int64_t seconds = ms <= 0 ? 0 : ms / 1000;
  constexpr std::int64_t kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour;
  if (seconds < kMinute) return fmt::format("{}s", seconds);
  // The larger unit, then the smaller one unless it is 0: "4m", "3m12s".
  const auto two_units = [&](std::int64_t big, char big_unit, std::int64_t small, char small_unit) {
    const auto rest = seconds % big / small;
    return fmt::format("{}{}", seconds / big, big_unit) +
           (rest == 0 ? "" : fmt::format("{}{}", rest, small_unit));
  };
  if (seconds < kHour) return two_units(kMinute, 'm', 1, 's');
  if (seconds < kDay) return two_units(kHour, 'h', kMinute, 'm');
  return two_units(kDay, 'd', kHour, 'h');
}

std::string list_header() {
  return column("ID", kIdWidth) + "  " + right("AGE", kAgeWidth) + "  " +
         right("NEXT", kNextWidth) + "  " + column("SENDER", kAddressWidth) + "  " +
         column("PENDING", kAddressWidth) + "  LAST ERROR\n";
}

std::string list_row(const json& line, std::int64_t now_ms) {
  const auto age_ms = static_cast<std::int64_t>(line.value("age_s", 0.0) * 1000);
  std::string next = "-";
  if (line.value("held", false)) {
    next = "held";
  } else if (line.contains("next_attempt_ms") && line["next_attempt_ms"].is_number()) {
    const auto due = line["next_attempt_ms"].get<std::int64_t>();
    next = due <= now_ms ? "now" : format_duration(due - now_ms);
  }
  std::string pending = "-";
  if (line.contains("recipients_pending") && !line["recipients_pending"].empty()) {
    const auto& recipients = line["recipients_pending"];
    pending = recipients[0].get<std::string>();
    if (recipients.size() > 1) pending += fmt::format(" +{}", recipients.size() - 1);
  }
  const auto& error = line.contains("last_error") ? line["last_error"] : json();
  const auto& category = line.contains("last_category") ? line["last_category"] : json();
  std::string error_text = "-";
  if (error.is_string()) {
    error_text = printable(error.get<std::string>());
    if (category.is_string())
      error_text = "[" + printable(category.get<std::string>()) + "] " + error_text;
  }
  return column(line.value("id", std::string()), kIdWidth) + "  " +
         right(format_duration(age_ms), kAgeWidth) + "  " + right(next, kNextWidth) + "  " +
         column(sender_text(line), kAddressWidth) + "  " + column(pending, kAddressWidth) + "  " +
         truncated(error_text, kErrorWidth) + "\n";
}

std::string show_text(const json& message, std::int64_t now_ms) {
  const auto received = message.value("received_ms", std::int64_t{0});
  const bool held = message.value("held", false);
  std::string out =
      fmt::format("message {}, received {} ago ({})\n", message.value("id", std::string()),
                  format_duration(static_cast<std::int64_t>(message.value("age_s", 0.0) * 1000)),
                  format_time(received));
  out += fmt::format("  from <{}>, {}\n", printable(message.value("sender", std::string())),
                     plural(message.value("size", std::uint64_t{0}), "byte"));
  out += fmt::format("  came in on {} from {} (EHLO {})\n",
                     printable(message.value("listener", std::string())),
                     printable(message.value("client_address", std::string())),
                     printable(message.value("helo", std::string())));
  if (held) out += "  on hold: nothing is delivered until it is released\n";
  if (message.contains("recipients")) {
    for (const auto& recipient : message["recipients"]) {
      out += recipient_text(recipient, held, now_ms);
    }
  }
  return out;
}

namespace {

// The shaped destinations: rate and connections in force, and how far a slow-down took them.
std::string shaping_text(const json& lanes) {
  std::string out = fmt::format("\n{}  {:>12}  {:>11}  {:>6}  {}\n", column("SHAPING", 40), "RATE",
                                "CONNECTIONS", "LEVEL", "STATE");
  for (const auto& lane : lanes) {
    const double rate = lane.value("message_rate", 0.0);
    const auto steps = lane.value("slowdown_steps", 0u);
    out += fmt::format(
        "{}  {:>12}  {:>11}  {:>5.0f}%  {}\n", column(lane.value("name", ""), 40),
        rate > 0 ? fmt::format("{:.4g}/s", rate) : std::string("unlimited"),
        fmt::format("{}/{}", lane.value("connections", 0u), lane.value("max_connections", 0u)),
        lane.value("level", 1.0) * 100,
        steps == 0 ? std::string("normal") : fmt::format("slowed ({} steps)", steps));
  }
  return out;
}

}  // namespace

std::string stats_text(const json& stats) {
  const auto count = [](const json& object, const char* key) {
    return object.contains(key) ? object[key].get<std::uint64_t>() : 0;
  };
  const auto& by_state = stats.contains("by_state") ? stats["by_state"] : json::object();
  const auto& recipients = stats.contains("recipients") ? stats["recipients"] : json::object();
  std::string out =
      fmt::format("messages    {} (ready {}, scheduled {}, held {})\n", count(stats, "messages"),
                  count(by_state, "ready"), count(by_state, "scheduled"), count(by_state, "held"));
  out += fmt::format("recipients  {} pending, {} delivered, {} bounced\n",
                     count(recipients, "pending"), count(recipients, "delivered"),
                     count(recipients, "bounced"));
  out += fmt::format(
      "oldest      {}\n",
      format_duration(static_cast<std::int64_t>(stats.value("oldest_age_s", 0.0) * 1000)));
  if (stats.contains("by_domain") && !stats["by_domain"].empty()) {
    out += fmt::format("\n{}  {:>10}  {:>10}\n", column("DOMAIN", 40), "RECIPIENTS", "MESSAGES");
    for (const auto& [domain, counts] : stats["by_domain"].items()) {
      out += fmt::format("{}  {:>10}  {:>10}\n", column(domain, 40), count(counts, "recipients"),
                         count(counts, "messages"));
    }
  }
  if (stats.contains("shaping") && !stats["shaping"].empty()) out += shaping_text(stats["shaping"]);
  return out;
}

}  // namespace relayq::mta
