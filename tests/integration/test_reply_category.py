"""Bounce classification through the real binary: a sink refuses recipients with fixed replies,
and each failed attempt carries its category in `relayq queue show`, the event=delivery log line
and relayq_delivery_failures_total; a [[reply_rule]] in the config goes before the built-in
table."""
import json
import re
import subprocess
import urllib.request

import pytest

from conftest import (RELAYQ_BIN, DnsServer, Sink, free_port, metric_value, send_message,
                      wait_until)

ZONE = """
cat.test.      60 IN MX 10 mx.cat.test.
mx.cat.test.   60 IN A 127.0.0.2
"""

BODY = b"Subject: categories\r\n\r\nHello.\r\n"

# One transaction to mx.cat.test: its RCPT replies in the envelope's order.
RECIPIENTS = ["unknown@cat.test", "full@cat.test", "naughty@cat.test"]
RCPT_REPLIES = [
    "550 5.1.1 user unknown",
    "452 4.2.2 mailbox full",
    # Built in, 5.7.1 is policy; the config's rule below makes this text reputation.
    "550 5.7.1 sender is on our local naughty list",
]
REPLY_RULE = """
[[reply_rule]]
category = "reputation"
code = "55"
text = "NAUGHTY LIST"
"""


@pytest.fixture
def refused(tmp_path, make_relay):
    """A relay whose one message had its three recipients refused as above: (relay, id)."""
    dns = DnsServer(tmp_path, ZONE)
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.2", port, replies={"rcpt": RCPT_REPLIES})
    # The deferred recipient waits an hour, keeping the message in the queue to be shown.
    relay = make_relay(delivery=f"port = {port}", extra=f"""
[dns]
servers = ["127.0.0.1:{dns.port}"]

[retry]
initial = "1h"
{REPLY_RULE}
""")
    message_id = send_message(relay.smtp_port, RECIPIENTS, "", BODY)  # <>: no DSN to send
    wait_until(lambda: len(delivery_lines(relay)) >= 3, 30, "three event=delivery lines")
    yield relay, message_id
    sink.stop()
    dns.stop()


def delivery_lines(relay):
    return [line for line in relay.log_text().splitlines() if "event=delivery " in line]


def queue_show(relay, message_id, *flags):
    result = subprocess.run([RELAYQ_BIN, "queue", "show", message_id, *flags, "-c",
                             str(relay.config_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_queue_show_has_each_failed_attempts_category(refused):
    relay, message_id = refused
    shown = json.loads(queue_show(relay, message_id, "--json"))
    categories = {r["address"]: [a.get("category") for a in r["history"]]
                  for r in shown["recipients"]}
    assert categories == {"unknown@cat.test": ["bad_mailbox"], "full@cat.test": ["mailbox_full"],
                          "naughty@cat.test": ["reputation"]}
    text = queue_show(relay, message_id)
    assert re.search(r"attempt 1 at .*: \[bad_mailbox\] 550 5\.1\.1 user unknown", text), text
    assert re.search(r"attempt 1 at .*: \[mailbox_full\] 452 4\.2\.2 mailbox full", text), text


def test_log_lines_name_the_category(refused):
    relay, _ = refused
    lines = delivery_lines(relay)
    by_recipient = {re.search(r"rcpt=(\S+)", line).group(1).strip('"'): line for line in lines}
    assert "status=bounced" in by_recipient["unknown@cat.test"]
    assert "category=bad_mailbox " in by_recipient["unknown@cat.test"]
    assert "status=deferred" in by_recipient["full@cat.test"]
    assert "category=mailbox_full " in by_recipient["full@cat.test"]
    assert "category=reputation " in by_recipient["naughty@cat.test"]


def test_failures_are_counted_by_category_and_result(refused):
    relay, _ = refused
    port = relay.metrics_port
    name = "relayq_delivery_failures_total"
    assert metric_value(port, name, category="bad_mailbox", result="bounced") == 1
    assert metric_value(port, name, category="mailbox_full", result="deferred") == 1
    assert metric_value(port, name, category="reputation", result="bounced") == 1
    assert metric_value(port, name, category="policy", result="bounced") == 0
    # The whole bounded set is there from the start, at zero when nothing happened.
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    series = re.findall(rf'^{name}\{{category="(\w+)",result="(\w+)"\}} ', text, re.M)
    assert len(series) == 20, series
    assert ("rate_limit", "deferred") in series
