// libFuzzer target: the input as a record of the queue's "envelopes" family, read back the way
// the store reads it. decode_envelope() must not throw; envelope_held() must agree with any
// record that decodes; a decoded envelope must encode and decode to itself; and the bounce
// delivery would build from it (classify, apply_reply, dsn_entry, build_dsn) must keep the
// promises of queue/dsn.hpp, whatever the record holds.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dsn_checks.hpp"
#include "fuzz_input.hpp"
#include "mta/delivery/recipient_fate.hpp"
#include "mta/delivery/reply_category.hpp"
#include "queue/dsn.hpp"
#include "queue/envelope_codec.hpp"
#include "queue/retry_policy.hpp"

namespace {

using namespace relayq;

// The stored last reply as the reply delivery saw: its leading code when it has one.
mta::SmtpReply reply_from(const std::string& last_reply) {
  mta::SmtpReply reply;
  reply.text = last_reply;
  if (last_reply.size() >= 3 && last_reply[0] >= '2' && last_reply[0] <= '5' &&
      last_reply[1] >= '0' && last_reply[1] <= '9' && last_reply[2] >= '0' &&
      last_reply[2] <= '9') {
    reply.code = std::stoi(last_reply.substr(0, 3));
  }
  return reply;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view record(reinterpret_cast<const char*>(data), size);
  const auto decoded = queue::decode_envelope(record);
  const auto held = queue::envelope_held(record);
  if (!decoded.envelope) {
    if (decoded.error.empty()) fuzz::fail("a refused record without a reason");
    return 0;
  }
  queue::Envelope envelope = *decoded.envelope;
  if (held != envelope.held) fuzz::fail("envelope_held disagrees with decode_envelope");
  const auto again = queue::decode_envelope(queue::encode_envelope(envelope));
  if (!again.envelope || !(*again.envelope == envelope)) fuzz::fail("an envelope lost in encoding");

  // Every recipient fails now, permanently or by age, as at the end of a delivery round.
  const std::string body = "Subject: stored\r\nMessage-ID: <fuzz@x.test>\r\n\r\nbody\r\n";
  queue::DsnRequest request;
  request.reporting_mta = "mx.fuzz.test";
  request.original = &envelope;
  request.original_headers = queue::header_section(body);
  const queue::RetryPolicy policy;
  mta::AttemptContext context;
  context.now_ms = envelope.received_ms + policy.max_age.count() + 1;
  context.nexthop = "mx.fuzz.test[127.0.0.1]:25";
  context.remote_host = "mx.fuzz.test";
  const mta::ReplyClassifier classifier;
  for (auto& recipient : envelope.recipients) {
    const auto reply = reply_from(recipient.last_reply);
    const auto fate = mta::apply_reply(recipient, reply, classifier.classify(reply), {policy, {}},
                                       envelope.received_ms, context);
    if (recipient.history.back().category.empty() != reply.success())
      fuzz::fail("a failed attempt without a category, or a success with one");
    if (fate == mta::Fate::delivered) continue;
    request.recipients.push_back(mta::dsn_entry(recipient, fate, reply, context, 0));
  }
  if (request.recipients.empty() || envelope.sender.empty()) return 0;
  try {
    fuzz::check_dsn(queue::build_dsn(request, 0x5678, context.now_ms));
  } catch (const std::invalid_argument&) {
    fuzz::fail("build_dsn refused a non-null sender");
  }
  return 0;
}
