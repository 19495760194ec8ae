// The label values of the contract's labelled metrics, as types: a call site names an
// enumerator, and the text Prometheus shows is written once, here. Header only, no state.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace relayq::metrics {

// relayq_messages_rejected_total{reason}: why a transaction or recipient was refused.
enum class RejectReason : std::uint8_t {
  relay_denied,
  size,
  bad_data,
  line_too_long,
  too_many_recipients,
  storage,
  timeout,
  auth_required,         // MAIL without AUTH on a listener that requires it
  spf,                   // the sender's SPF failed (policy.spf = reject), or could not be checked
  rdns,                  // the client has no forward-confirmed reverse DNS (policy.rdns = require)
  unknown_recipient,     // our mailbox server has no such user (550 5.1.1 at RCPT)
  unverified_recipient,  // our mailbox server could not say now (4xx at RCPT)
};
inline constexpr std::array kRejectReasons = {
    RejectReason::relay_denied,
    RejectReason::size,
    RejectReason::bad_data,
    RejectReason::line_too_long,
    RejectReason::too_many_recipients,
    RejectReason::storage,
    RejectReason::timeout,
    RejectReason::auth_required,
    RejectReason::spf,
    RejectReason::rdns,
    RejectReason::unknown_recipient,
    RejectReason::unverified_recipient,
};

// relayq_outbound_replies_total{class}: a next hop's reply by class; error = no reply at all.
enum class ReplyClass : std::uint8_t { success, transient, permanent, error };
inline constexpr std::array kReplyClasses = {ReplyClass::success, ReplyClass::transient,
                                             ReplyClass::permanent, ReplyClass::error};
constexpr ReplyClass reply_class_of(int code) {
  if (code == 0) return ReplyClass::error;
  if (code < 400) return ReplyClass::success;
  return code < 500 ? ReplyClass::transient : ReplyClass::permanent;
}

// relayq_delivery_failures_total{category, result}: the result of a failed attempt; the
// categories are mta's ReplyCategory names, a fixed set.
enum class FailureResult : std::uint8_t { deferred, bounced };
inline constexpr std::array kFailureResults = {FailureResult::deferred, FailureResult::bounced};

// relayq_tls_handshakes_total{direction, result}: how much mail moves encrypted, each way.
enum class Direction : std::uint8_t { inbound, outbound };
enum class TlsResult : std::uint8_t { ok, failed };
inline constexpr std::array kDirections = {Direction::inbound, Direction::outbound};
inline constexpr std::array kTlsResults = {TlsResult::ok, TlsResult::failed};

// relayq_queue_messages{state}.
enum class QueueState : std::uint8_t { ready, scheduled, held };

// relayq_policy_results_total{check, result}: the checks, and the results RFC 8601 names
// (2.7.1 dkim, 2.7.2 spf, 2.7.3 iprev, which is our rdns; RFC 7489 11.2 dmarc).
enum class PolicyCheck : std::uint8_t { spf, dkim, dmarc, rdns };
enum class PolicyResult : std::uint8_t {
  none,
  pass,
  fail,
  softfail,
  policy,
  neutral,
  temperror,
  permerror,
};

inline constexpr std::array kPolicyResults = {
    PolicyResult::none,   PolicyResult::pass,    PolicyResult::fail,      PolicyResult::softfail,
    PolicyResult::policy, PolicyResult::neutral, PolicyResult::temperror, PolicyResult::permerror,
};

constexpr std::string_view label(RejectReason reason) {
  switch (reason) {
    case RejectReason::relay_denied:
      return "relay_denied";
    case RejectReason::size:
      return "size";
    case RejectReason::bad_data:
      return "bad_data";
    case RejectReason::line_too_long:
      return "line_too_long";
    case RejectReason::too_many_recipients:
      return "too_many_recipients";
    case RejectReason::storage:
      return "storage";
    case RejectReason::timeout:
      return "timeout";
    case RejectReason::auth_required:
      return "auth_required";
    case RejectReason::spf:
      return "spf";
    case RejectReason::rdns:
      return "rdns";
    case RejectReason::unknown_recipient:
      return "unknown_recipient";
    case RejectReason::unverified_recipient:
      return "unverified_recipient";
  }
  return "unknown";
}

constexpr std::string_view label(ReplyClass reply_class) {
  switch (reply_class) {
    case ReplyClass::success:
      return "2xx";
    case ReplyClass::transient:
      return "4xx";
    case ReplyClass::permanent:
      return "5xx";
    case ReplyClass::error:
      return "error";
  }
  return "unknown";
}

constexpr std::string_view label(FailureResult result) {
  return result == FailureResult::deferred ? "deferred" : "bounced";
}

constexpr std::string_view label(Direction direction) {
  return direction == Direction::inbound ? "inbound" : "outbound";
}

constexpr std::string_view label(TlsResult result) {
  return result == TlsResult::ok ? "ok" : "failed";
}

constexpr std::string_view label(QueueState state) {
  switch (state) {
    case QueueState::ready:
      return "ready";
    case QueueState::scheduled:
      return "scheduled";
    case QueueState::held:
      return "held";
  }
  return "unknown";
}

constexpr std::string_view label(PolicyCheck check) {
  switch (check) {
    case PolicyCheck::spf:
      return "spf";
    case PolicyCheck::dkim:
      return "dkim";
    case PolicyCheck::dmarc:
      return "dmarc";
    case PolicyCheck::rdns:
      return "rdns";
  }
  return "unknown";
}

constexpr std::string_view label(PolicyResult result) {
  switch (result) {
    case PolicyResult::none:
      return "none";
    case PolicyResult::pass:
      return "pass";
    case PolicyResult::fail:
      return "fail";
    case PolicyResult::softfail:
      return "softfail";
    case PolicyResult::policy:
      return "policy";
    case PolicyResult::neutral:
      return "neutral";
    case PolicyResult::temperror:
      return "temperror";
    case PolicyResult::permerror:
      return "permerror";
  }
  return "unknown";
}

// The result an RFC 8601 result word names ("pass", "softfail", ...): every check's result
// type spells its values that way, so one word list serves them all. permerror for any other.
constexpr PolicyResult policy_result_named(std::string_view word) {
  for (const PolicyResult result : kPolicyResults)
    if (label(result) == word) return result;
  return PolicyResult::permerror;
}

}  // namespace relayq::metrics
