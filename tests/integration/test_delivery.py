"""Outbound delivery through the real binary: MX resolution from a real DNS server on loopback,
real SMTP sinks on 127.0.0.x, connection reuse and limits, the retry schedule, DSNs, restarts."""
import email
import email.policy
import re
import smtplib
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import send_message, wait_until, DnsServer, Sink, free_port, queued_id

ZONE = """
a.test.      60 IN MX 10 mx.a.test.
mx.a.test.   60 IN A 127.0.0.2
b.test.      60 IN MX 10 mx.b.test.
mx.b.test.   60 IN A 127.0.0.3
c.test.      60 IN MX 10 mx.c.test.
mx.c.test.   60 IN A 127.0.0.4
d.test.      60 IN MX 10 mx1.d.test.
d.test.      60 IN MX 20 mx2.d.test.
mx1.d.test.  60 IN A 127.0.0.5
mx2.d.test.  60 IN A 127.0.0.6
sender.test. 60 IN MX 10 mx.sender.test.
mx.sender.test. 60 IN A 127.0.0.7
bad.test.    60 IN MX 10 mx.bad.test.
mx.bad.test. 60 IN A 127.0.0.8
slow.test.   60 IN MX 10 mx.slow.test.
mx.slow.test. 60 IN A 127.0.0.9
implicit.test. 60 IN A 127.0.0.10
nullmx.test. 60 IN MX 0 .
"""

BODY = b"Subject: delivery test\r\n\r\nHello.\r\n.leading dot line\r\n"


@pytest.fixture
def world(tmp_path, make_relay):
    """A DNS server, a port number shared by every sink (delivery.port), and a way to start
    relayq pointed at both."""
    dns = DnsServer(tmp_path, ZONE)
    port = free_port()
    sinks = []

    class World:
        def __init__(self):
            self.port = port

        def sink(self, address, replies=None):
            sink = Sink(tmp_path, address, port, replies)
            sinks.append(sink)
            return sink

        def relay(self, retry='initial = "1s"\nfactor = 2.0\njitter = 0.0', delivery=""):
            return make_relay(delivery=f"port = {port}\n{delivery}", extra=f"""
[dns]
servers = ["127.0.0.1:{dns.port}"]

[retry]
{retry}
""")

    yield World()
    for sink in sinks:
        sink.stop()
    dns.stop()


def send(relay, rcpts, sender="sender@sender.test", body=BODY):
    return send_message(relay.smtp_port, rcpts, sender, body)


def delivery_log(relay, status=None):
    """(time, line) of each event=delivery log line, optionally only one status."""
    out = []
    for line in relay.log_text().splitlines():
        if "event=delivery " in line and (status is None or f"status={status} " in line):
            stamp = datetime.strptime(re.search(r"time=(\S+)", line).group(1),
                                      "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            out.append((stamp.timestamp(), line))
    return out


def test_three_domains_arrive_at_their_mx_sinks(world):
    sinks = {d: world.sink(ip) for d, ip in (("a", "127.0.0.2"), ("b", "127.0.0.3"), ("c", "127.0.0.4"))}
    relay = world.relay()
    send(relay, ["x@a.test", "y@b.test", "z@c.test"])
    for domain, sink in sinks.items():
        [(envelope, message)] = sink.wait_for(1)
        assert envelope["rcpt_to"] == [f"{'xyz'['abc'.index(domain)]}@{domain}.test"]
        assert envelope["mail_from"] == "sender@sender.test"
        assert message.endswith(BODY)  # dot-stuffed on the wire, unstuffed by the sink
        assert message.startswith(b"Received: ")
    wait_until(lambda: len(delivery_log(relay, "sent")) == 3, what="three deliveries logged")
    time.sleep(0.5)  # the commit that removes the message follows the last reply
    assert relay.stop() == 0
    assert relay.inspect() == []  # every recipient delivered: the message left the queue


def test_first_mx_refusing_connections_falls_back_to_second(world):
    second = world.sink("127.0.0.6")  # nothing listens on 127.0.0.5
    relay = world.relay()
    send(relay, ["u@d.test"])
    [(envelope, _)] = second.wait_for(1)
    assert envelope["rcpt_to"] == ["u@d.test"]


def test_implicit_mx_uses_the_domain_address(world):
    sink = world.sink("127.0.0.10")
    relay = world.relay()
    send(relay, ["u@implicit.test"])
    sink.wait_for(1)


def test_thousand_messages_share_few_reused_connections(world):
    sink = world.sink("127.0.0.2")
    relay = world.relay(delivery="max_connections_per_destination = 4")
    total, clients = 1000, 10

    def client(n):
        with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=60) as smtp:
            smtp.ehlo("client.test")
            for _ in range(n):
                smtp.sendmail("sender@sender.test", ["r@a.test"], BODY)

    threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.wait_for(total, timeout=120)
    connections = sink.connections()
    assert 1 <= len(connections) <= 4, connections
    assert len(sink.messages()) == total


def test_451_twice_then_delivered_on_schedule(world):
    sink = world.sink("127.0.0.9", replies={"data": ["451 4.3.0 try later", "451 4.3.0 try later"]})
    relay = world.relay(retry='initial = "1s"\nfactor = 2.0\njitter = 0.0\nmax_interval = "1h"')
    send(relay, ["late@slow.test"])
    sink.wait_for(1, timeout=30)
    # The sink has the message before relayq has its 250 and logs the delivery.
    wait_until(lambda: len(delivery_log(relay)) >= 3, 10, "the third attempt logged")
    attempts = delivery_log(relay)
    statuses = [re.search(r"status=(\w+)", line).group(1) for _, line in attempts]
    assert statuses == ["deferred", "deferred", "sent"], attempts
    first_wait = attempts[1][0] - attempts[0][0]
    second_wait = attempts[2][0] - attempts[1][0]
    assert 0.9 <= first_wait <= 2.0, first_wait    # initial = 1 s
    assert 1.9 <= second_wait <= 3.0, second_wait  # then 1 s * factor 2


def test_550_bounces_with_a_dsn_to_the_sender(world):
    world.sink("127.0.0.8", replies={"rcpt": "550 5.1.1 <nobody@bad.test>: no such user"})
    sender_sink = world.sink("127.0.0.7")
    relay = world.relay()
    original = send(relay, ["nobody@bad.test"])
    [(envelope, raw)] = sender_sink.wait_for(1)
    assert envelope["mail_from"] == ""
    assert envelope["rcpt_to"] == ["sender@sender.test"]
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    status_part = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"][0]
    per_recipient = status_part.get_payload()[1]
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Action"] == "failed"
    assert "550 5.1.1" in per_recipient["Diagnostic-Code"]
    assert per_recipient["Final-Recipient"].endswith("nobody@bad.test")
    relay.stop()
    assert [e for e in relay.inspect() if e["id"] == original] == []


def test_null_mx_bounces_at_once_with_5_1_10(world):
    sender_sink = world.sink("127.0.0.7")
    relay = world.relay()
    send(relay, ["who@nullmx.test"])
    [(_, raw)] = sender_sink.wait_for(1)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    status_part = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"][0]
    assert status_part.get_payload()[1]["Status"] == "5.1.10"


def test_restart_keeps_attempts_and_next_times(world):
    world.sink("127.0.0.9", replies={"data": "451 4.3.0 always later"})
    relay = world.relay(retry='initial = "2s"\nfactor = 2.0\njitter = 0.0')
    message_id = send(relay, ["late@slow.test"])
    wait_until(lambda: len(delivery_log(relay, "deferred")) >= 2, what="two deferrals")
    assert relay.stop() == 0
    [envelope] = [e for e in relay.inspect() if e["id"] == message_id]
    [recipient] = envelope["recipients"]
    assert recipient["attempts"] == 2
    assert recipient["state"] == "pending"
    next_attempt = recipient["next_attempt_ms"] / 1000
    assert next_attempt > time.time()  # the 4 s wait after the second failure is still running
    relay.start()
    wait_until(lambda: len(delivery_log(relay, "deferred")) >= 3, timeout=20, what="third attempt")
    third_time = delivery_log(relay, "deferred")[2][0]
    # Neither reset nor hammered: the third attempt keeps the stored time.
    assert third_time >= next_attempt - 0.2
    assert relay.stop() == 0
    [envelope] = [e for e in relay.inspect() if e["id"] == message_id]
    assert envelope["recipients"][0]["attempts"] == 3


def test_failing_destination_is_backed_off_as_a_whole(world):
    # Nothing listens on 127.0.0.5 (mx1.d.test) and mx2.d.test has no sink either.
    relay = world.relay(retry='initial = "1m"\njitter = 0.0',
                        delivery="max_connections_per_destination = 2")
    for _ in range(20):
        send(relay, ["u@d.test"])
    wait_until(lambda: len(delivery_log(relay, "deferred")) >= 20, what="20 deferrals")
    failures = [line for line in relay.log_text().splitlines() if "event=destination_failed" in line]
    backed_off = [line for _, line in delivery_log(relay, "deferred") if "backed off" in line]
    # A few connection attempts find the destination failing (messages that arrive meanwhile
    # share their verdict); the rest are not sent there at all.
    assert 1 <= len(failures) <= 4, failures
    assert len(backed_off) >= 10, backed_off


def test_delay_warning_is_sent_once(world):
    world.sink("127.0.0.9", replies={"data": "451 4.3.0 always later"})
    sender_sink = world.sink("127.0.0.7")
    relay = world.relay(retry='initial = "1s"\nfactor = 1.0\njitter = 0.0\ndelay_warning = "1s"')
    send(relay, ["late@slow.test"])
    wait_until(lambda: len(delivery_log(relay, "deferred")) >= 4, what="four deferrals")
    [(envelope, raw)] = sender_sink.messages()
    assert envelope["mail_from"] == ""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    status_part = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"][0]
    per_recipient = status_part.get_payload()[1]
    assert per_recipient["Action"] == "delayed"
    assert per_recipient["Status"] == "4.3.0"
    assert "Will-Retry-Until" in per_recipient
