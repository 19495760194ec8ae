"""Tests of smtp_sink.py itself, with smtplib and raw sockets: storage, scripts, limits."""
import json
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SINK = Path(__file__).resolve().parent / "smtp_sink.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningSink:
    def __init__(self, tmp_path, *arguments, script=None):
        self.port = free_port()
        self.dir = tmp_path / "out"
        command = [sys.executable, str(SINK), "--listen", f"127.0.0.1:{self.port}",
                   "--dir", str(self.dir), *arguments]
        if script is not None:
            script_path = tmp_path / "script.json"
            script_path.write_text(json.dumps(script))
            command += ["--reply-script", str(script_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test", timeout=10)

    def raw(self):
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        connection.recv(1000)  # the greeting
        return connection

    def messages(self):
        found = []
        for meta in sorted(self.dir.glob("*.json"), key=lambda p: int(p.stem)):
            found.append((json.loads(meta.read_text()), (self.dir / f"{meta.stem}.eml").read_bytes()))
        return found

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=10)


@pytest.fixture
def sink_factory(tmp_path):
    started = []

    def start(*arguments, script=None):
        sink = RunningSink(tmp_path, *arguments, script=script)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        if sink.process.poll() is None:
            sink.process.kill()
            sink.process.wait()


def read_reply(connection):
    data = b""
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_stores_messages_and_envelopes(sink_factory):
    sink = sink_factory()
    with sink.smtp() as client:
        code, features = client.ehlo()
        assert code == 250
        for keyword in (b"PIPELINING", b"SIZE", b"8BITMIME", b"SMTPUTF8", b"ENHANCEDSTATUSCODES"):
            assert keyword in features
        client.sendmail("a@x.test", ["b@y.test", "c@y.test"],
                        b"Subject: one\r\n\r\n.leading dot\r\nbody\r\n", mail_options=["BODY=8BITMIME"])
        client.sendmail("", ["d@y.test"], b"Subject: two\r\n\r\nx\r\n")
    with sink.smtp() as client:
        client.sendmail("e@x.test", ["f@y.test"], b"Subject: three\r\n\r\ny\r\n")
    assert sink.stop() == 0

    messages = sink.messages()
    assert [meta["rcpt_to"] for meta, _ in messages] == [["b@y.test", "c@y.test"], ["d@y.test"],
                                                         ["f@y.test"]]
    first, content = messages[0]
    assert content == b"Subject: one\r\n\r\n.leading dot\r\nbody\r\n"  # unstuffed
    assert first["mail_from"] == "a@x.test"
    assert "BODY=8BITMIME" in first["mail_params"]
    assert first["helo"] == "client.test"
    assert first["peer"].startswith("127.0.0.1:")
    assert abs(first["time"] - time.time()) < 60
    assert messages[1][0]["mail_from"] == ""
    assert [meta["connection"] for meta, _ in messages] == [1, 1, 2]
    log = (sink.dir / "connections.log").read_text().splitlines()
    assert [line.split()[0] for line in log] == ["1", "2"]
    assert not list(sink.dir.glob(".*.tmp"))


def test_reply_script_lists_then_normal(sink_factory):
    sink = sink_factory(script={"data": ["451 4.3.0 try later", "451 4.3.0 try later"],
                                "rcpt": [None, "550 5.1.1 no such user"]})
    outcomes = []
    for _ in range(3):
        with sink.smtp() as client:
            try:
                refused = client.sendmail("a@x.test", ["b@y.test"], b"Subject: s\r\n\r\nx\r\n")
                outcomes.append(("sent", refused))
            except smtplib.SMTPDataError as error:
                outcomes.append(("data", error.smtp_code))
            except smtplib.SMTPRecipientsRefused as error:
                outcomes.append(("rcpt", error.recipients["b@y.test"][0]))
    assert outcomes == [("data", 451), ("rcpt", 550), ("data", 451)]
    with sink.smtp() as client:
        assert client.sendmail("a@x.test", ["b@y.test"], b"Subject: s\r\n\r\nx\r\n") == {}
    assert len(sink.messages()) == 1


@pytest.mark.parametrize("greeting", ["421 4.3.2 busy", "554 5.7.1 go away"])
def test_scripted_greeting_refuses(sink_factory, greeting):
    sink = sink_factory(script={"greeting": greeting})
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        sink.smtp()
    assert refused.value.smtp_code == int(greeting[:3])
    if greeting.startswith("554"):
        connection = sink.raw()
        connection.sendall(b"EHLO c.test\r\n")
        assert read_reply(connection).startswith(b"503")
        connection.sendall(b"QUIT\r\n")
        assert read_reply(connection).startswith(b"221")


def test_421_closes_the_connection(sink_factory):
    sink = sink_factory(script={"mail": "421 4.3.2 shutting down"})
    connection = sink.raw()
    connection.sendall(b"EHLO c.test\r\n")
    read_reply(connection)
    connection.sendall(b"MAIL FROM:<a@x.test>\r\n")
    assert read_reply(connection) == b"421 4.3.2 shutting down\r\n"
    assert connection.recv(100) == b""


def test_size_limit(sink_factory):
    sink = sink_factory("--max-size", "100")
    with sink.smtp() as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "100"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@x.test", ["b@y.test"], b"x" * 200)
        assert refused.value.smtp_code == 552
    # Without a SIZE= parameter the content itself is measured.
    connection = sink.raw()
    connection.sendall(b"EHLO c.test\r\n")
    read_reply(connection)
    connection.sendall(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert read_reply(connection).startswith(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354")
    connection.sendall(b"y" * 200 + b"\r\n.\r\n")
    assert read_reply(connection).startswith(b"552 5.3.4")
    assert sink.messages() == []


def test_pipelined_replies_come_in_one_group(sink_factory):
    sink = sink_factory()
    connection = sink.raw()
    connection.sendall(b"EHLO c.test\r\n")
    read_reply(connection)
    connection.sendall(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
                       b"DATA\r\n")
    replies = read_reply(connection)
    assert replies.count(b"\r\n") == 4 and replies.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    connection.sendall(b"..dot\r\n\r\n.\r\n")
    assert read_reply(connection).startswith(b"250 2.0.0 Ok: queued as 1")
    assert sink.messages()[0][1] == b".dot\r\n\r\n"


def test_without_pipelining_a_pipelining_client_is_cut_off(sink_factory):
    sink = sink_factory("--no-pipelining")
    connection = sink.raw()
    connection.sendall(b"EHLO c.test\r\n")
    assert b"PIPELINING" not in read_reply(connection)
    connection.sendall(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n")
    assert read_reply(connection) == b"554 5.5.0 SMTP synchronization error\r\n"
    assert connection.recv(100) == b""
    with sink.smtp() as client:  # one command at a time is fine
        assert client.sendmail("a@x.test", ["b@y.test"], b"Subject: s\r\n\r\nx\r\n") == {}


@pytest.mark.parametrize("content", [b"bare\nLF\r\n", b"bare\rCR\r\n", b"a\r\n.\nb\r\n"])
def test_bare_line_ends_are_refused(sink_factory, content):
    sink = sink_factory()
    connection = sink.raw()
    connection.sendall(b"HELO c.test\r\n")
    read_reply(connection)
    for command in (b"MAIL FROM:<a@x.test>", b"RCPT TO:<b@y.test>", b"DATA"):
        connection.sendall(command + b"\r\n")
        read_reply(connection)
    connection.sendall(content + b".\r\n")
    assert read_reply(connection).startswith(b"550 5.6.0")
    assert sink.messages() == []


def test_listen_must_be_loopback(tmp_path):
    result = subprocess.run([sys.executable, str(SINK), "--listen", "0.0.0.0:2525",
                             "--dir", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
