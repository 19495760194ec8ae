#!/usr/bin/python3
"""Reads a DSN from a file with Python's email package, as mail clients do.

Fails (assertion, non-zero exit) unless the message parses without defects as a
multipart/report of report-type delivery-status whose parts are text/plain,
message/delivery-status and text/rfc822-headers. Prints, as JSON, the
per-recipient fields of the delivery-status part (folded fields unfolded).
Usage: parse_dsn.py FILE
"""
import email
import email.policy
import json
import sys


def one_line(value):
    return " ".join(str(value).split()) if value is not None else None


def main(path):
    with open(path, "rb") as dsn_file:
        message = email.message_from_binary_file(dsn_file, policy=email.policy.default)
    for part in message.walk():
        assert not part.defects, f"{part.get_content_type()}: {part.defects}"
    assert message.get_content_type() == "multipart/report", message.get_content_type()
    assert message.get_param("report-type") == "delivery-status"
    parts = message.get_payload()
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ], [part.get_content_type() for part in parts]
    # The parser reads message/delivery-status as a list of field blocks: the per-message
    # block first, then one per recipient.
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, "no per-recipient block"
    assert str(blocks[0]["Reporting-MTA"]).startswith("dns; "), blocks[0]["Reporting-MTA"]
    assert blocks[0]["Arrival-Date"] is not None
    recipients = [
        {
            "final_recipient": one_line(block["Final-Recipient"]),
            "action": one_line(block["Action"]),
            "status": one_line(block["Status"]),
            "diagnostic_code": one_line(block["Diagnostic-Code"]),
        }
        for block in blocks[1:]
    ]
    print(json.dumps({"recipients": recipients}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
