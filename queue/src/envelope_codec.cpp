// MessagePack encoding of envelopes through nlohmann-json, with strict type checks on decode.
#include "queue/envelope_codec.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace relayq::queue {
namespace {

using nlohmann::json;

// Short names keep a record small: an envelope is rewritten on every delivery attempt.
namespace field {
constexpr const char* kVersion = "v";
constexpr const char* kId = "i";
constexpr const char* kSender = "s";
constexpr const char* kRecipients = "r";
constexpr const char* kReceived = "t";
constexpr const char* kListener = "l";
constexpr const char* kClient = "c";
constexpr const char* kHelo = "h";
constexpr const char* kEightBit = "8";
constexpr const char* kSmtputf8 = "u";
constexpr const char* kSize = "z";
constexpr const char* kHeld = "o";
constexpr const char* kDelayWarned = "w";
// Inside a recipient.
constexpr const char* kAddress = "a";
constexpr const char* kState = "s";
constexpr const char* kAttempts = "n";
constexpr const char* kLastReply = "y";
constexpr const char* kNextAttempt = "x";
constexpr const char* kHistory = "h";
constexpr const char* kRetryRule = "r";  // absent for the default [retry] (and in older records)
// Inside an attempt.
constexpr const char* kTime = "t";
constexpr const char* kNexthop = "n";
constexpr const char* kReply = "y";
constexpr const char* kTls = "s";  // absent for plaintext (and in records older than TLS)
// Absent for a success (and in records older than reply categories).
constexpr const char* kCategory = "c";
}  // namespace field

// Reads an optional field, keeping the default when it is absent. A present field of the wrong
// type throws (nlohmann's type_error or ours), which decode_envelope turns into an error.
template <typename T>
void read(const json& object, const char* name, T& out) {
  const auto it = object.find(name);
  if (it == object.end()) return;
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
    out = it->template get<T>();
  } else {
    // get<> alone would silently convert a float or truncate a wider integer.
    const bool fits =
        it->is_number_unsigned()
            ? std::in_range<T>(it->template get<std::uint64_t>())
            : it->is_number_integer() && std::in_range<T>(it->template get<std::int64_t>());
    if (!fits) {
      throw std::invalid_argument(std::string("field ") + name + " is not an integer in range");
    }
    out = it->template get<T>();
  }
}

// The last millisecond of the year 9999: times past it (or before 1970) are no clock's, and
// would overflow when delivery adds the retry policy's durations to them.
constexpr std::int64_t kLatestTimeMs = 253'402'300'799'999;

// A time field (ms since the epoch): read() plus the range of real clocks.
void read_time(const json& object, const char* name, std::int64_t& out) {
  read(object, name, out);
  if (out < 0 || out > kLatestTimeMs) {
    throw std::out_of_range(std::string("field ") + name + " is not a time");
  }
}

const json& require_array(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_array()) {
    throw std::invalid_argument(std::string("field ") + name + " is not an array");
  }
  return *it;
}

void require_object(const json& value, const char* what) {
  if (!value.is_object()) throw std::invalid_argument(std::string(what) + " is not a map");
}

// How many entries the header of the MessagePack map at the start of `bytes` announces
// (fixmap, map 16, map 32); nullopt when it is not a map.
std::optional<std::size_t> announced_entries(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  const auto first = static_cast<unsigned char>(bytes[0]);
  if ((first & 0xF0) == 0x80) return first & 0x0F;
  const std::size_t width = first == 0xDE ? 2 : first == 0xDF ? 4 : 0;
  if (width == 0 || bytes.size() < 1 + width) return std::nullopt;
  std::size_t entries = 0;
  for (std::size_t i = 1; i <= width; ++i) {
    entries = entries << 8 | static_cast<unsigned char>(bytes[i]);
  }
  return entries;
}

json encode_attempt(const Attempt& attempt) {
  json object{{field::kTime, attempt.time_ms},
              {field::kNexthop, attempt.nexthop},
              {field::kReply, attempt.reply}};
  if (!attempt.tls.empty()) object[field::kTls] = attempt.tls;
  if (!attempt.category.empty()) object[field::kCategory] = attempt.category;
  return object;
}

json encode_recipient(const Recipient& recipient) {
  json history = json::array();
  for (const auto& attempt : recipient.history) history.push_back(encode_attempt(attempt));
  json object{{field::kAddress, recipient.address},
              {field::kState, static_cast<std::uint8_t>(recipient.state)},
              {field::kAttempts, recipient.attempts},
              {field::kLastReply, recipient.last_reply},
              {field::kNextAttempt, recipient.next_attempt_ms},
              {field::kHistory, std::move(history)}};
  if (!recipient.retry_rule.empty()) object[field::kRetryRule] = recipient.retry_rule;
  return object;
}

Attempt decode_attempt(const json& object) {
  require_object(object, "attempt");
  Attempt attempt;
  read_time(object, field::kTime, attempt.time_ms);
  read(object, field::kNexthop, attempt.nexthop);
  read(object, field::kReply, attempt.reply);
  read(object, field::kTls, attempt.tls);
  read(object, field::kCategory, attempt.category);
  return attempt;
}

Recipient decode_recipient(const json& object) {
  require_object(object, "recipient");
  Recipient recipient;
  read(object, field::kAddress, recipient.address);
  std::uint8_t state = 0;
  read(object, field::kState, state);
  if (state > static_cast<std::uint8_t>(RecipientState::bounced)) {
    throw std::out_of_range("unknown recipient state " + std::to_string(state));
  }
  recipient.state = static_cast<RecipientState>(state);
  read(object, field::kAttempts, recipient.attempts);
  read(object, field::kLastReply, recipient.last_reply);
  read_time(object, field::kNextAttempt, recipient.next_attempt_ms);
  if (object.contains(field::kHistory)) {
    for (const auto& attempt : require_array(object, field::kHistory)) {
      recipient.history.push_back(decode_attempt(attempt));
    }
  }
  read(object, field::kRetryRule, recipient.retry_rule);
  return recipient;
}

}  // namespace

std::string encode_envelope(const Envelope& envelope) {
  json recipients = json::array();
  for (const auto& recipient : envelope.recipients) {
    recipients.push_back(encode_recipient(recipient));
  }
  const json object{{field::kVersion, kEnvelopeFormatVersion},
                    {field::kId, envelope.id},
                    {field::kSender, envelope.sender},
                    {field::kRecipients, std::move(recipients)},
                    {field::kReceived, envelope.received_ms},
                    {field::kListener, envelope.listener},
                    {field::kClient, envelope.client_address},
                    {field::kHelo, envelope.helo},
                    {field::kEightBit, envelope.eight_bit_mime},
                    {field::kSmtputf8, envelope.smtputf8},
                    {field::kSize, envelope.size},
                    {field::kHeld, envelope.held},
                    {field::kDelayWarned, envelope.delay_warned}};
  std::string bytes;
  // MessagePack strings are raw bytes: addresses and replies need not be valid UTF-8.
  json::to_msgpack(object, bytes);
  return bytes;
}

DecodedEnvelope decode_envelope(std::string_view bytes) {
  const json object = json::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true,
                                         /*allow_exceptions=*/false);
  if (object.is_discarded()) return {std::nullopt, "not a MessagePack value"};
  try {
    require_object(object, "envelope record");
    // The decoder keeps the last of two equal keys, envelope_held() the first: a record that
    // has any (relayq writes none) is damaged, and refused so that both agree.
    if (announced_entries(bytes) != object.size()) {
      throw std::invalid_argument("a field of the envelope record appears twice");
    }
    std::uint32_t version = 0;
    read(object, field::kVersion, version);
    if (version == 0 || version > kEnvelopeFormatVersion) {
      return {std::nullopt, "unsupported envelope format version " + std::to_string(version)};
    }
    Envelope envelope;
    read(object, field::kId, envelope.id);
    read(object, field::kSender, envelope.sender);
    for (const auto& recipient : require_array(object, field::kRecipients)) {
      envelope.recipients.push_back(decode_recipient(recipient));
    }
    read_time(object, field::kReceived, envelope.received_ms);
    read(object, field::kListener, envelope.listener);
    read(object, field::kClient, envelope.client_address);
    read(object, field::kHelo, envelope.helo);
    read(object, field::kEightBit, envelope.eight_bit_mime);
    read(object, field::kSmtputf8, envelope.smtputf8);
    read(object, field::kSize, envelope.size);
    read(object, field::kHeld, envelope.held);
    read(object, field::kDelayWarned, envelope.delay_warned);
    return {std::move(envelope), {}};
  } catch (const std::exception& error) {
    return {std::nullopt, error.what()};
  }
}

namespace {

// SAX events of one record: remembers the top-level "held" field and stops reading there
// (fields are stored in key order, so the recipients, the bulk of a record, come after it).
class HeldReader {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  bool null() { return value(); }
  bool boolean(bool held) {
    if (depth_ == 1 && at_held_) {
      held_ = held;
      return false;  // all we wanted
    }
    return value();
  }
  bool number_integer(number_integer_t) { return value(); }
  bool number_unsigned(number_unsigned_t) { return value(); }
  bool number_float(number_float_t, const string_t&) { return value(); }
  bool string(string_t&) { return value(); }
  bool binary(binary_t&) { return value(); }
  bool start_object(std::size_t) {
    if (depth_ == 0) {
      map_ = true;  // the record itself
    } else if (!value()) {
      return false;
    }
    ++depth_;
    return true;
  }
  bool key(string_t& name) {
    if (depth_ == 1) at_held_ = name == field::kHeld;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    if (!value()) return false;
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    failed_ = true;
    return false;
  }

  // After the parse: the answer, or nullopt for a record that is not one.
  std::optional<bool> result(bool parsed_whole) const {
    if (failed_ || !map_ || invalid_) return std::nullopt;
    if (held_) return held_;
    // Absent: not held (the default), provided the whole record was a well-formed map.
    if (!parsed_whole) return std::nullopt;
    return false;
  }

 private:
  // A value other than held's boolean: fine anywhere but as the record itself or as "held".
  bool value() {
    if (depth_ == 0 || (depth_ == 1 && at_held_)) {
      invalid_ = true;
      return false;
    }
    return true;
  }

  int depth_ = 0;
  bool map_ = false;
  bool at_held_ = false;
  bool invalid_ = false;
  bool failed_ = false;
  std::optional<bool> held_;
};

}  // namespace

std::optional<bool> envelope_held(std::string_view bytes) {
  HeldReader reader;
  const bool parsed_whole = json::sax_parse(bytes.begin(), bytes.end(), &reader,
                                            json::input_format_t::msgpack, /*strict=*/true);
  return reader.result(parsed_whole);
}

}  // namespace relayq::queue
