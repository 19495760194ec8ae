// The reply table: every row is a well-formed reply, and every counted refusal is a 4xx or 5xx.
#include <catch2/catch.hpp>

#include "mta/smtp/replies.hpp"

namespace relayq::mta {
namespace {

TEST_CASE("replies are formatted from their row, the argument in its place", "[replies]") {
  CHECK(format_reply(Reply::relay_denied) == "554 5.7.1 Relay access denied");
  CHECK(format_reply(Reply::greeting, "mx.test") == "220 mx.test ESMTP relayq");
  CHECK(format_reply(Reply::timeout, "mx.test") == "421 4.4.2 mx.test Error: timeout exceeded");
  CHECK(format_reply(Reply::queued, "00000000000000AB") ==
        "250 2.0.0 Ok: queued as 00000000000000AB");
  CHECK(format_reply(Reply::chunk_received, "42") == "250 2.0.0 42 octets received");
}

TEST_CASE("every row's enhanced code has the class of its reply code", "[replies]") {
  for (int i = 0; i <= static_cast<int>(Reply::remote_no_smtputf8); ++i) {
    const ReplyRow& row = reply_row(static_cast<Reply>(i));
    INFO(format_reply(row.reply));
    CHECK(static_cast<int>(row.reply) == i);
    CHECK(row.code >= 200);
    CHECK(row.code < 600);
    if (!row.enhanced.empty()) CHECK(row.enhanced.front() - '0' == row.code / 100);
    // A counted refusal refuses: dashboards count no success as a rejection.
    if (row.reason) CHECK(row.code >= 400);
  }
}

TEST_CASE("store verdicts map to their rows and reasons", "[replies]") {
  CHECK(reply_for(queue::StoreErrorKind::none) == Reply::queued);
  CHECK(format_reply(reply_for(queue::StoreErrorKind::no_space)) ==
        "452 4.3.1 Insufficient system storage");
  CHECK(format_reply(reply_for(queue::StoreErrorKind::io_error)) ==
        "451 4.3.0 Temporary storage failure, try again later");
  CHECK(format_reply(reply_for(queue::StoreErrorKind::shutting_down)) ==
        "421 4.3.2 Service shutting down");
  for (const auto error : {queue::StoreErrorKind::no_space, queue::StoreErrorKind::io_error,
                           queue::StoreErrorKind::shutting_down})
    CHECK(reply_row(reply_for(error)).reason == metrics::RejectReason::storage);
}

}  // namespace
}  // namespace relayq::mta
