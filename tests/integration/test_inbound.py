"""Inbound SMTP through the real binary: sizes, byte-identical storage, contract replies."""
import os
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import queued_id, strip_received


def make_message(size: int, tag: str) -> bytes:
    """A message of about `size` bytes with CRLF lines, some starting with dots."""
    header = (f"From: sender@example.test\r\nTo: rcpt@example.org\r\nSubject: {tag}\r\n"
              f"Message-ID: <{tag}@example.test>\r\n\r\n").encode()
    lines = []
    total = len(header)
    n = 0
    while total < size:
        line = (f".dot line {n} " if n % 7 == 0 else f"line {n} ") + "x" * 60 + "\r\n"
        lines.append(line.encode())
        total += len(line)
        n += 1
    return header + b"".join(lines)


def send(port, message: bytes, sender="sender@example.test", rcpts=("rcpt@example.org",)):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("client.test")
        code, reply = smtp.mail(sender)
        assert code == 250, reply
        for rcpt in rcpts:
            code, reply = smtp.rcpt(rcpt)
            assert code == 250, reply
        code, reply = smtp.data(message)
        assert code == 250, reply
        return queued_id(reply)


@pytest.mark.parametrize("size", [1024, 64 * 1024, 1024 * 1024, 20 * 1024 * 1024])
def test_smtplib_messages_are_stored_byte_identical(relay, size):
    message = make_message(size, f"size{size}")
    message_id = send(relay.smtp_port, message)
    assert relay.stop() == 0
    envelopes = {e["id"]: e for e in relay.inspect()}
    assert message_id in envelopes
    envelope = envelopes[message_id]
    assert envelope["sender"] == "sender@example.test"
    assert [r["address"] for r in envelope["recipients"]] == ["rcpt@example.org"]
    body = relay.body(message_id)
    assert strip_received(body) == message
    assert envelope["size"] == len(body)


def test_swaks_message_with_several_recipients(relay, tmp_path):
    data = tmp_path / "mail.eml"
    message = make_message(4096, "swaks")
    data.write_bytes(message)
    result = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(relay.smtp_port), "--from", "a@example.test",
         "--to", "b@example.org,c@example.net", "--data", str(data), "--helo", "swaks.test"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    assert relay.stop() == 0
    [envelope] = relay.inspect()
    assert sorted(r["address"] for r in envelope["recipients"]) == ["b@example.org", "c@example.net"]
    assert envelope["helo"] == "swaks.test"
    body = relay.body(envelope["id"])
    assert body.startswith(b"Received: from swaks.test")
    # swaks ends the data with a line break of its own; apart from that it arrives intact.
    assert strip_received(body).rstrip(b"\r\n") == message.rstrip(b"\r\n")


def dialogue(port, lines, read_banner=True):
    """Sends raw lines (bytes) and returns every reply line received until the server closes or
    goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        replies = []
        if read_banner:
            replies.append(f.readline())
        for chunk in lines:
            s.sendall(chunk)
            while True:
                line = f.readline()
                replies.append(line)
                if not line or line[3:4] != b"-":
                    break
        return [r.decode(errors="replace").rstrip("\r\n") for r in replies]


def test_oversize_declared_and_undeclared(make_relay):
    relay = make_relay(listener_extra='max_message_size = "100K"')
    with smtplib.SMTP("127.0.0.1", relay.smtp_port) as smtp:
        smtp.ehlo("client.test")
        assert smtp.esmtp_features["size"] == str(100 * 1024)
        code, reply = smtp.mail("a@example.test", ["SIZE=200000"])
        assert (code, reply[:5]) == (552, b"5.3.4")
        assert smtp.mail("a@example.test")[0] == 250
        assert smtp.rcpt("b@example.org")[0] == 250
        code, reply = smtp.data(make_message(200 * 1024, "big"))
        assert (code, reply[:5]) == (552, b"5.3.4")
        # The session goes on: a message within the limit is accepted afterwards.
        assert smtp.mail("a@example.test")[0] == 250
        assert smtp.rcpt("b@example.org")[0] == 250
        assert smtp.data(make_message(1024, "small"))[0] == 250
    relay.stop()
    assert len(relay.inspect()) == 1


def test_relay_denied_outside_networks(make_relay):
    relay = make_relay(relay_networks='["10.0.0.0/8"]', relay_domains='["accepted.test"]')
    with smtplib.SMTP("127.0.0.1", relay.smtp_port) as smtp:
        smtp.ehlo("client.test")
        assert smtp.mail("a@example.test")[0] == 250
        code, reply = smtp.rcpt("b@foreign.example")
        assert (code, reply[:5]) == (554, b"5.7.1")
        assert smtp.rcpt("b@ACCEPTED.test")[0] == 250
        assert smtp.data(make_message(1024, "inbound"))[0] == 250
    relay.stop()
    [envelope] = relay.inspect()
    assert [r["address"] for r in envelope["recipients"]] == ["b@ACCEPTED.test"]


def test_bad_commands_get_contract_replies(relay):
    replies = dialogue(relay.smtp_port, [
        b"EHLO client.test\r\n",
        b"FROB\r\n",
        b"MAIL FROM:<a@example.test> " + b"X" * 600 + b"\r\n",
        b"RCPT TO:<b@example.org>\r\n",
        b"MAIL FROM:<a@example.test>\r\n",
        b"MAIL FROM:<a@example.test>\r\n",
        b"QUIT\r\n",
    ])
    codes = [r[:3] for r in replies if r and r[3:4] == " "]
    assert codes == ["220", "250", "500", "500", "503", "250", "503", "221"], replies
    assert any(r.startswith("500 5.5.2") for r in replies), replies


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r",
                                     b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"])
def test_smuggling_is_rejected_and_nothing_smuggled_is_queued(relay, smuggle):
    smuggled = (b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nsmuggled\r\n")
    with socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO client.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        for _ in range(30):  # the EHLO lines, 250, 250, then 354
            line = f.readline()
            if line.startswith(b"354"):
                break
        assert line.startswith(b"354"), line
        s.sendall(b"Subject: first\r\n\r\nbody" + smuggle + smuggled + b".\r\n")
        reply = f.readline()
        assert reply[:1] == b"5", reply
        s.sendall(b"QUIT\r\n")
        f.readline()
    relay.stop()
    assert relay.inspect() == []


def test_too_many_connections_get_421(make_relay):
    relay = make_relay(listener_extra="max_connections = 2")
    # The start-up probe's connection may still be counted for a moment: retry until two fit.
    for _ in range(50):
        held = [socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=10) for _ in range(2)]
        banners = [s.makefile("rb").readline() for s in held]
        if all(b.startswith(b"220") for b in banners):
            break
        for s in held:
            s.close()
        time.sleep(0.1)
    assert all(b.startswith(b"220") for b in banners), banners
    with socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=10) as s:
        assert s.makefile("rb").readline().startswith(b"421 4.3.2")
    for s in held:
        s.close()


def test_sigterm_stops_cleanly_and_queue_survives_restart(relay):
    first = send(relay.smtp_port, make_message(2048, "before"))
    assert relay.stop() == 0
    assert "event=stopped" in relay.log_text()
    relay.start()
    second = send(relay.smtp_port, make_message(2048, "after"))
    assert relay.stop() == 0
    ids = [e["id"] for e in relay.inspect()]
    assert ids == sorted([first, second])
    assert "due_recipients=1 " in relay.log_text()


def test_header_section_over_the_limit_is_refused(make_relay):
    """A 10 MiB header section under a 25 MiB message limit: 552 5.3.4 (max_header_size, 1 MiB
    by default), nothing stored; the same bulk in the body is taken."""
    relay = make_relay()
    bulk = "".join(f"X-Filler-{i}: {'h' * 70}\r\n" for i in range(10 * 1024 * 1024 // 84))
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.test")
        smtp.mail("sender@example.test")
        smtp.rcpt("rcpt@example.org")
        code, text = smtp.data(("Subject: big header\r\n" + bulk + "\r\nbody\r\n").encode())
        assert (code, text[:5]) == (552, b"5.3.4"), text
        smtp.mail("sender@example.test")
        smtp.rcpt("rcpt@example.org")
        code, text = smtp.data(("Subject: big body\r\n\r\n" + bulk).encode())
        assert code == 250, text
    relay.stop()
    assert len(relay.inspect()) == 1


def test_a_client_that_only_talks_is_closed(make_relay):
    """Whole commands sent one by one reset the timeout; the junk-command and error limits end
    such a session (421 4.7.0) instead."""
    relay = make_relay(listener_extra="max_junk_commands = 5\nmax_errors = 3")
    with socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        replies = []
        for _ in range(6):
            sock.sendall(b"NOOP\r\n")
            replies.append(stream.readline())
        assert replies == [b"250 2.0.0 Ok\r\n"] * 6  # the sixth is answered, then:
        assert stream.readline().startswith(b"421 4.7.0 ")
        assert stream.readline() == b""  # closed
    with socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"EHLO c.test\r\n" + b"BOGUS\r\n" * 4)
        lines = stream.read().splitlines()
        assert lines[-1].startswith(b"421 4.7.0 "), lines
