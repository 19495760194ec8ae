// Formats the Received: header.
#include "mta/smtp/received_header.hpp"

#include <string>

#include "queue/rfc5322_date.hpp"

namespace relayq::mta {

std::string format_received(const ReceivedTrace& trace) {
  std::string header = "Received: from ";
  header.append(trace.helo);
  // The address literal form of RFC 5321 4.1.3.
  header.append(trace.client.v6 ? " ([IPv6:" : " ([");
  header.append(trace.client.to_string());
  header.append("])\r\n\t");
  if (trace.tls != nullptr) {
    // As Postfix writes it: what protected the message on this hop.
    header.append("(using ");
    header.append(trace.tls->version);
    header.append(" with cipher ");
    header.append(trace.tls->cipher);
    header.append(" (");
    header.append(std::to_string(trace.tls->bits));
    header.append(" bits))\r\n\t");
  }
  header.append("by ");
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
  header.append(queue::format_rfc5322_date(trace.time_ms));
  header.append("\r\n");
  return header;
}

}  // namespace relayq::mta
