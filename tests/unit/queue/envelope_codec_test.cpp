// The stored form of an envelope: what it keeps, and which damaged records it refuses.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "queue/envelope_codec.hpp"
#include "queue/message.hpp"

namespace relayq::queue {
namespace {

Envelope sample_envelope() {
  Envelope envelope;
  envelope.id = 0x1234;
  envelope.sender = "us\xc3\xa9r@example.test";  // raw UTF-8: records keep bytes as they are
  envelope.received_ms = 1'700'000'000'000;
  envelope.listener = "127.0.0.1:25";
  envelope.client_address = "192.0.2.7";
  envelope.helo = "client.example.test";
  envelope.smtputf8 = true;
  envelope.size = 4096;
  envelope.held = true;
  Recipient& recipient = envelope.recipients.emplace_back();
  recipient.address = "bob@example.org";
  recipient.attempts = 2;
  recipient.last_reply = "451 4.7.1 greylisted\n451 4.7.1 try later";
  recipient.next_attempt_ms = 1'700'000'600'000;
  recipient.retry_rule = "slow.example";
  recipient.history.push_back({1'700'000'001'000, "mx.example.org[192.0.2.9]:25",
                               "451 4.7.1 greylisted", "TLSv1.3 TLS_AES_256_GCM_SHA384 verified",
                               "policy"});
  envelope.recipients.emplace_back().address = "carol@example.org";
  return envelope;
}

}  // namespace

TEST_CASE("an envelope decodes to what was encoded", "[queue][codec]") {
  const Envelope envelope = sample_envelope();
  const std::string record = encode_envelope(envelope);
  const DecodedEnvelope decoded = decode_envelope(record);
  REQUIRE(decoded.envelope);
  CHECK(*decoded.envelope == envelope);
  CHECK(envelope_held(record) == true);
}

TEST_CASE("the retry rule is kept only when it is an override's", "[queue][codec]") {
  // A recipient deferred by the default [retry] stores no rule, as records written before the
  // rule was kept: both decode to an empty one.
  const Envelope envelope = sample_envelope();
  const auto stored = nlohmann::json::from_msgpack(encode_envelope(envelope));
  CHECK(stored["r"][0]["r"] == "slow.example");
  CHECK_FALSE(stored["r"][1].contains("r"));
  const DecodedEnvelope decoded = decode_envelope(encode_envelope(envelope));
  REQUIRE(decoded.envelope);
  CHECK(decoded.envelope->recipients[0].retry_rule == "slow.example");
  CHECK(decoded.envelope->recipients[1].retry_rule.empty());

  auto damaged = stored;
  damaged["r"][0]["r"] = 7;
  std::string record;
  nlohmann::json::to_msgpack(damaged, record);
  CHECK_FALSE(decode_envelope(record).envelope);
}

TEST_CASE("an attempt's category is stored only when it has one", "[queue][codec]") {
  Envelope envelope = sample_envelope();
  std::string record = encode_envelope(envelope);
  const std::size_t category = record.find(
      "\xa1"
      "c\xa6policy");
  REQUIRE(category != std::string::npos);

  // A success's attempt, or one stored before categories: no field, and an empty category back.
  Envelope without = envelope;
  without.recipients[0].history[0].category.clear();
  const std::string old_record = encode_envelope(without);
  CHECK(old_record.find("\xa6policy") == std::string::npos);
  const DecodedEnvelope decoded = decode_envelope(old_record);
  REQUIRE(decoded.envelope);
  CHECK(decoded.envelope->recipients[0].history[0].category.empty());
  CHECK(*decoded.envelope == without);

  // A category that is not a string is damage, like any field of the wrong type.
  record.replace(category + 2, 7, "\xc3");  // true
  CHECK_FALSE(decode_envelope(record).envelope);
}

TEST_CASE("records that are not envelopes are refused with a reason", "[queue][codec]") {
  for (const std::string& bytes :
       {std::string(), std::string("\xc1"), std::string("\x81\xa1v\x02"), std::string("\x90")}) {
    const DecodedEnvelope decoded = decode_envelope(bytes);
    CHECK_FALSE(decoded.envelope);
    CHECK_FALSE(decoded.error.empty());
  }
}

TEST_CASE("a record with a field twice is refused, so that the census agrees", "[queue][codec]") {
  // Found by fuzzing stored records: {"o": "text", ..., "o": true} decoded as held while
  // envelope_held() saw a string first. Here the listener's key is changed into held's.
  Envelope envelope = sample_envelope();
  envelope.held = false;
  envelope.listener = "x";  // "l" then "x", right after it in key order
  std::string record = encode_envelope(envelope);
  const std::size_t listener = record.find("\xa1l\xa1x");
  REQUIRE(listener != std::string::npos);
  record[listener + 1] = 'o';
  const DecodedEnvelope decoded = decode_envelope(record);
  CHECK_FALSE(decoded.envelope);
  CHECK(decoded.error == "a field of the envelope record appears twice");
}

TEST_CASE("times no clock can show are refused rather than overflowing later", "[queue][codec]") {
  // Found by fuzzing stored records: delivery adds max_age to the reception time.
  for (const std::int64_t time : {std::numeric_limits<std::int64_t>::max() - 5, std::int64_t{-1},
                                  std::int64_t{253'402'300'800'000}}) {
    Envelope received = sample_envelope();
    received.received_ms = time;
    Envelope next_attempt = sample_envelope();
    next_attempt.recipients[0].next_attempt_ms = time;
    Envelope attempt = sample_envelope();
    attempt.recipients[0].history[0].time_ms = time;
    for (const Envelope& envelope : {received, next_attempt, attempt}) {
      const DecodedEnvelope decoded = decode_envelope(encode_envelope(envelope));
      CHECK_FALSE(decoded.envelope);
      CHECK_THAT(decoded.error, Catch::EndsWith("is not a time"));
    }
  }
  Envelope latest = sample_envelope();
  latest.received_ms = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  CHECK(decode_envelope(encode_envelope(latest)).envelope);
}

}  // namespace relayq::queue
