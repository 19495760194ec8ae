// Formats the Received: header and its RFC 5322 date.
#include "received_header.hpp"

#include <cstdio>
#include <ctime>

namespace relayq::mta {

std::string format_date(std::int64_t time_ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = static_cast<std::time_t>(time_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

std::string format_received(const ReceivedTrace& trace) {
  std::string header = "Received: from ";
  header.append(trace.helo);
  // The address literal form of RFC 5321 4.1.3.
  header.append(trace.client.v6 ? " ([IPv6:" : " ([");
  header.append(trace.client.to_string());
  header.append("])\r\n\tby ");
  header.append(trace.hostname);
  header.append(" (relayq) with ");
  header.append(trace.protocol);
  header.append(" id ");
  header.append(queue::format_id(trace.id));
  if (!trace.recipient.empty()) {
    header.append("\r\n\tfor <");
    header.append(trace.recipient);
    header.append(">");
  }
  header.append(";\r\n\t");
  header.append(format_date(trace.time_ms));
  header.append("\r\n");
  return header;
}

}  // namespace relayq::mta
