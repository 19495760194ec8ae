"""Log lines: one per event, in logfmt or JSON, with the message id tying reception to delivery."""
import json
import smtplib
import time

from conftest import queued_id


def send(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        smtp.mail('"odd sender"@example.test')
        smtp.rcpt("rcpt@example.org")
        code, reply = smtp.data(b"Subject: log\r\n\r\nbody\r\n")
        assert code == 250
        return queued_id(reply)


def test_json_log_lines_are_objects_tying_reception_to_delivery(make_relay):
    relay = make_relay(extra='[log]\nformat = "json"\n')
    message_id = send(relay.smtp_port)
    deadline = time.monotonic() + 30
    while '"event":"delivery"' not in relay.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relay.stop() == 0
    lines = [json.loads(line) for line in relay.log_text().splitlines() if line.strip()]
    assert all({"time", "level"} <= set(line) for line in lines)
    accepted = [line for line in lines if line.get("event") == "accepted"]
    assert accepted and accepted[0]["id"] == message_id
    assert accepted[0]["from"] == '"odd sender"@example.test'
    attempts = [line for line in lines if line.get("event") == "delivery" and line["id"] == message_id]
    assert attempts and attempts[0]["status"] == "deferred"  # the test smarthost refuses


def test_logfmt_lines_quote_values_with_spaces(relay):
    message_id = send(relay.smtp_port)
    assert relay.stop() == 0
    accepted = [line for line in relay.log_text().splitlines() if "event=accepted" in line]
    assert f"id={message_id}" in accepted[0]
    assert 'from="\\"odd sender\\"@example.test"' in accepted[0]
    assert all(line.startswith("time=") for line in relay.log_text().splitlines() if line.strip())


def test_debug_level_traces_every_change_of_session_state(make_relay):
    """At level debug the path of each session can be read from the log: why a client was cut
    off, or where it stood when it left."""
    relay = make_relay(extra='[log]\nlevel = "debug"\n')
    send(relay.smtp_port)
    assert relay.stop() == 0
    inbound = [line.split(" from=")[1] for line in relay.log_text().splitlines()
               if "event=session_state" in line]
    assert inbound == ["greeting to=ready", "ready to=mail", "mail to=data", "data to=storing",
                       "storing to=ready", "ready to=closed"]


def test_info_level_keeps_session_states_out_of_the_log(relay):
    send(relay.smtp_port)
    assert relay.stop() == 0
    assert "event=session_state" not in relay.log_text()
