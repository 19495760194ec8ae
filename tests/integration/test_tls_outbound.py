"""Outbound TLS against the real binary: STARTTLS to a sink that offers it (checked at the
sink), `required` to a sink without it deferring and never sending in plaintext, a route's
`tls` override with certificate verification against its CA and host, the attempt history's
TLS record, session resumption on a reused destination, and the handshake metrics."""
import json
import subprocess

import pytest

from conftest import (RELAYQ_BIN, Sink, free_port, make_certificates, metric_value,
                      send_message, wait_until)

MESSAGE = b"Subject: outbound\r\n\r\nover TLS, we hope\r\n"


def queue_show(relay, message_id):
    out = subprocess.run([RELAYQ_BIN, "queue", "show", message_id, "--json", "--admin",
                          f"127.0.0.1:{relay.admin_port}"], check=True, capture_output=True)
    return json.loads(out.stdout)


def history(relay, message_id):
    return queue_show(relay, message_id)["recipients"][0]["history"]


@pytest.fixture
def certs(tmp_path):
    return make_certificates(tmp_path / "certs", names=("127.0.0.1",))


def test_opportunistic_delivery_arrives_encrypted(make_relay, tmp_path, certs):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port, tls=(certs["cert"], certs["key"]))
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"\ntls = "opportunistic"')
        for _ in range(3):
            send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        messages = sink.wait_for(3)
        for envelope, _ in messages:
            assert envelope["tls"] is not None
            assert envelope["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
        assert metric_value(relay.metrics_port, "relayq_tls_handshakes_total",
                            direction="outbound", result="ok") >= 1
    finally:
        sink.stop()


def test_opportunistic_without_starttls_goes_in_plaintext(make_relay, tmp_path):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"')  # the default
        message_id = send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        envelope, _ = sink.wait_for(1)[0]
        assert envelope["tls"] is None
        wait_until(lambda: queue_show_or_none(relay, message_id) is None, 10, "delivered")
    finally:
        sink.stop()


def queue_show_or_none(relay, message_id):
    result = subprocess.run([RELAYQ_BIN, "queue", "show", message_id, "--json", "--admin",
                             f"127.0.0.1:{relay.admin_port}"], capture_output=True)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_opportunistic_handshake_failure_falls_back_to_plaintext(make_relay, tmp_path, certs):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port, tls=(certs["cert"], certs["key"]),
                tls_client_cert=True)
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"')
        send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        envelope, _ = sink.wait_for(1)[0]
        assert envelope["tls"] is None
        assert "event=tls_fallback" in relay.log_text()
    finally:
        sink.stop()


def test_required_handshake_failure_defers(make_relay, tmp_path, certs):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port, tls=(certs["cert"], certs["key"]),
                tls_client_cert=True)
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"\ntls = "required"')
        message_id = send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        wait_until(lambda: history(relay, message_id), 15, "an attempt")
        # TLS 1.3: the server's refusal comes after the client's side of the handshake, as an
        # alert or a reset while we wait for the EHLO reply over TLS.
        assert "EHLO" in history(relay, message_id)[0]["reply"]
        assert queue_show(relay, message_id)["recipients"][0]["state"] == "pending"
        assert sink.messages() == []
    finally:
        sink.stop()


def test_required_to_a_sink_without_starttls_defers_and_sends_nothing(make_relay, tmp_path):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"\ntls = "required"')
        message_id = send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        wait_until(lambda: history(relay, message_id), 15, "an attempt")
        attempt = history(relay, message_id)[0]
        assert "TLS required, but the server does not offer STARTTLS" in attempt["reply"]
        shown = queue_show(relay, message_id)
        assert shown["recipients"][0]["state"] == "pending"
        assert sink.connections()  # it did connect...
        assert sink.messages() == []  # ...and never sent the message in plaintext
        assert "TLS required" in subprocess.run(
            [RELAYQ_BIN, "queue", "show", message_id, "--admin", f"127.0.0.1:{relay.admin_port}"],
            check=True, capture_output=True, text=True).stdout
    finally:
        sink.stop()


def test_route_tls_override_verifies_the_certificate(make_relay, tmp_path, certs):
    """[routes] tls = "required" with tls_ca: the chain and the host (here an IP literal) are
    verified, and the attempt history says so; a certificate for another name is refused."""
    good_port, bad_port = free_port(), free_port()
    good = Sink(tmp_path, "127.0.0.1", good_port, tls=(certs["cert"], certs["key"]))
    other = make_certificates(tmp_path / "other", names=("mx.other.test",))
    bad = Sink(tmp_path, "127.0.0.1", bad_port, tls=(other["cert"], other["key"]))
    try:
        relay = make_relay(delivery='smarthost = ""\ntls = "off"', extra=f"""
[routes."good.test"]
nexthop = "127.0.0.1:{good_port}"
tls = "required"
tls_ca = "{certs['ca']}"
[routes."bad.test"]
nexthop = "127.0.0.1:{bad_port}"
tls = "required"
tls_ca = "{other['ca']}"
""")
        good_id = send_message(relay.smtp_port, ["x@good.test"], "a@client.test", MESSAGE)
        bad_id = send_message(relay.smtp_port, ["x@bad.test"], "a@client.test", MESSAGE)
        envelope, _ = good.wait_for(1)[0]
        assert envelope["tls"] is not None
        wait_until(lambda: history(relay, bad_id), 15, "an attempt to bad.test")
        attempt = history(relay, bad_id)[0]
        assert "TLS handshake failed" in attempt["reply"]
        assert "certificate" in attempt["reply"]
        assert bad.messages() == []
        assert metric_value(relay.metrics_port, "relayq_tls_handshakes_total",
                            direction="outbound", result="failed") >= 1
        assert good_id
    finally:
        good.stop()
        bad.stop()


def test_attempt_history_records_tls_and_resumption(make_relay, tmp_path, certs):
    """The sink says 421 at the end of data and hangs up, every time: the message stays, each
    attempt on a new connection. Each attempt records its TLS, and the later connections
    resume the first one's session instead of a full handshake."""
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port, tls=(certs["cert"], certs["key"]),
                replies={"data": "421 4.3.0 closing"})
    try:
        relay = make_relay(delivery=f'smarthost = "127.0.0.1:{port}"\ntls = "required"',
                           extra='[retry]\ninitial = "1s"\nfactor = 1.0\njitter = 0.0')
        message_id = send_message(relay.smtp_port, ["b@example.org"], "a@client.test", MESSAGE)
        wait_until(lambda: len(history(relay, message_id)) >= 2, 30, "two attempts")
        first, second = history(relay, message_id)[:2]
        for attempt in (first, second):
            assert attempt["tls"].startswith("TLSv1.3 TLS_")
            assert "unverified" in attempt["tls"]  # no tls_ca: encrypted, not authenticated
            assert "421 4.3.0 closing" in attempt["reply"]
        assert "resumed" not in first["tls"]
        assert "resumed" in second["tls"]
        text = subprocess.run([RELAYQ_BIN, "queue", "show", message_id, "--admin",
                               f"127.0.0.1:{relay.admin_port}"], check=True, capture_output=True,
                              text=True).stdout
        assert "(TLSv1.3 TLS_" in text
    finally:
        sink.stop()
