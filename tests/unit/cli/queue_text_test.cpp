// What `relayq queue list|show|stats` print for people: durations, table rows, the history
// explanation, and peer text kept off the terminal's control codes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "mta/cli/queue_text.hpp"

namespace relayq::mta {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::int64_t kNow = 1'700'000'000'000;  // 2023-11-14 22:13:20 UTC

}  // namespace

TEST_CASE("Queue durations show their two largest units", "[admin][cli]") {
  CHECK(format_duration(-5'000) == "0s");
  CHECK(format_duration(999) == "0s");
  CHECK(format_duration(45'000) == "45s");
  CHECK(format_duration(192'000) == "3m12s");
  CHECK(format_duration(240'000) == "4m");
  CHECK(format_duration(7'200'000) == "2h");
  CHECK(format_duration(3'720'000) == "1h2m");
  CHECK(format_duration(183'600'000) == "2d3h");
}

TEST_CASE("Queue list rows show age, next attempt, pending recipients and the last error",
          "[admin][cli]") {
  const auto header = list_header();
  CHECK(header.starts_with("ID  "));
  CHECK(header.ends_with("LAST ERROR\n"));

  const Json deferred = {{"id", "0190AB12CD340001"},
                         {"age_s", 192.5},
                         {"sender", "alice@example.org"},
                         {"recipients_pending", {"bob@example.net", "carol@example.net"}},
                         {"next_attempt_ms", kNow + 240'000},
                         {"last_error", "451 4.3.0 try\r\nlater"},
                         {"held", false}};
  const auto row = list_row(deferred, kNow);
  CHECK(row ==
        "0190AB12CD340001    3m12s       4m  alice@example.org               bob@example.net +1 "
        "             451 4.3.0 try  later\n");
  // Columns line up with the header's.
  CHECK(row.find("3m12s") + 5 == header.find("AGE") + 3);
  CHECK(row.find("bob@") == header.find("PENDING"));
  CHECK(row.find("451") == header.find("LAST ERROR"));

  Json held = deferred;
  held["held"] = true;
  held["sender"] = "";
  held["last_error"] = nullptr;
  const auto held_row = list_row(held, kNow);
  CHECK(held_row.find("   held  <>  ") != std::string::npos);
  CHECK(held_row.ends_with("  -\n"));

  Json due = deferred;
  due["next_attempt_ms"] = kNow - 1;
  due["sender"] = std::string(40, 'x') + "@example.org";
  due["last_error"] = std::string(100, 'e');
  const auto due_row = list_row(due, kNow);
  CHECK(due_row.find("      now  ") != std::string::npos);
  CHECK(due_row.find(std::string(27, 'x') + "...  ") != std::string::npos);
  CHECK(due_row.ends_with(std::string(57, 'e') + "...\n"));

  Json classified = deferred;
  classified["last_category"] = "network";
  CHECK(list_row(classified, kNow).ends_with("  [network] 451 4.3.0 try  later\n"));
}

TEST_CASE("Queue show explains every attempt and when the next one is due", "[admin][cli]") {
  const Json message = {
      {"id", "0190AB12CD340001"},
      {"sender", "alice@example.org"},
      {"received_ms", kNow - 600'000},
      {"age_s", 600.0},
      {"size", 1234},
      {"listener", "127.0.0.1:2525"},
      {"client_address", "192.0.2.7"},
      {"helo", "client.test\x1b[31m"},
      {"held", false},
      {"recipients",
       {{{"address", "bob@example.net"},
         {"state", "pending"},
         {"attempts", 2},
         {"last_reply", "451 4.3.0 try later"},
         {"next_attempt_ms", kNow + 240'000},
         {"retry_rule", "default"},
         {"history",
          {{{"time_ms", kNow - 590'000}, {"nexthop", ""}, {"reply", "connection refused"}},
           {{"time_ms", kNow - 60'000},
            {"nexthop", "mx1.example[192.0.2.1]:25"},
            {"reply", "451 4.3.0 try later"},
            {"category", "network"}}}}},
        {{"address", "carol@example.net"},
         {"state", "delivered"},
         {"attempts", 1},
         {"last_reply", "250 ok"},
         {"next_attempt_ms", nullptr},
         {"history",
          {{{"time_ms", kNow - 590'000},
            {"nexthop", "mx1.example[192.0.2.1]:25"},
            {"reply", "250 ok"},
            {"tls", "TLSv1.3 TLS_AES_128_GCM_SHA256 verified"}}}}},
        {{"address", "dave@example.net"},
         {"state", "pending"},
         {"attempts", 0},
         {"last_reply", ""},
         {"next_attempt_ms", kNow - 1},
         {"retry_rule", nullptr},
         {"history", Json::array()}}}}};
  CHECK(show_text(message, kNow) ==
        "message 0190AB12CD340001, received 10m ago (2023-11-14 22:03:20 UTC)\n"
        "  from <alice@example.org>, 1234 bytes\n"
        "  came in on 127.0.0.1:2525 from 192.0.2.7 (EHLO client.test [31m)\n"
        "bob@example.net: pending, 2 attempts\n"
        "  attempt 1 at 2023-11-14 22:03:30 UTC (no connection): connection refused\n"
        "  attempt 2 at 2023-11-14 22:12:20 UTC via mx1.example[192.0.2.1]:25 (plaintext): "
        "[network] 451 4.3.0 try later; next attempt in 4m (rule default)\n"
        "carol@example.net: delivered after 1 attempt\n"
        "  attempt 1 at 2023-11-14 22:03:30 UTC via mx1.example[192.0.2.1]:25 (TLSv1.3 "
        "TLS_AES_128_GCM_SHA256 verified): 250 ok\n"
        "dave@example.net: pending, no attempt yet\n"
        "  next attempt due now\n");

  Json held = message;
  held["held"] = true;
  const auto text = show_text(held, kNow);
  CHECK(text.find("  on hold: nothing is delivered until it is released\n") != std::string::npos);
  CHECK(text.find("250 ok\n") != std::string::npos);
  CHECK(text.find("451 4.3.0 try later; held: no attempt until released\n") != std::string::npos);
}

TEST_CASE("Queue show names the domain override that set the next attempt", "[admin][cli]") {
  const Json message = {{"id", "0190AB12CD340002"},
                        {"received_ms", kNow - 60'000},
                        {"recipients",
                         {{{"address", "ann@slow.example"},
                           {"state", "pending"},
                           {"attempts", 1},
                           {"next_attempt_ms", kNow + 3'600'000},
                           {"retry_rule", "slow.example"},
                           {"history",
                            {{{"time_ms", kNow - 60'000},
                              {"nexthop", "mx.slow.example[192.0.2.5]:25"},
                              {"reply", "451 4.3.0 later"}}}}}}}};
  CHECK_THAT(show_text(message, kNow), Catch::EndsWith("451 4.3.0 later; next attempt in 1h (rule "
                                                       "retry.domains.\"slow.example\")\n"));
}

TEST_CASE("Queue stats print counts and the domains in the server's order", "[admin][cli]") {
  const Json stats = {{"messages", 12},
                      {"by_state", {{"ready", 3}, {"scheduled", 8}, {"held", 1}}},
                      {"recipients", {{"pending", 20}, {"delivered", 2}, {"bounced", 1}}},
                      {"by_domain",
                       {{"zeta.example", {{"messages", 8}, {"recipients", 15}}},
                        {"alpha.example", {{"messages", 3}, {"recipients", 4}}},
                        {"other", {{"messages", 1}, {"recipients", 1}}}}},
                      {"oldest_age_s", 3781.2}};
  const auto text = stats_text(stats);
  CHECK(
      text.starts_with("messages    12 (ready 3, scheduled 8, held 1)\n"
                       "recipients  20 pending, 2 delivered, 1 bounced\n"
                       "oldest      1h3m\n"));
  CHECK(text.find("zeta.example") < text.find("alpha.example"));
  CHECK(text.find("alpha.example") < text.find("other"));
  CHECK(text.find("zeta.example                                      15           8\n") !=
        std::string::npos);
}

}  // namespace relayq::mta
