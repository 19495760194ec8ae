"""The PROXY protocol (v1 and v2) on a listener behind a trusted load balancer, against the
real binary: the client the header names is the one relay rights, Received: and the logs see;
a LOCAL header keeps the connection's own address; no header, or a bad one, closes the
connection before the banner; an smtps listener reads the header, then TLS."""
import base64
import socket
import ssl
import struct

import pytest

from conftest import (free_port, make_certificates, password_hash, read_reply, strip_received,
                      wait_for_port, wait_until)

MESSAGE = b"Subject: proxied\r\n\r\nbody\r\n"


@pytest.fixture
def proxied_relay(make_relay):
    # Relay rights for loopback only: a stranger named by the header must not relay.
    return make_relay(listener_extra="proxy_protocol = true", relay_networks='["127.0.0.0/8"]')


def dialogue(port, header, commands):
    """Sends `header`, then each command in turn; returns the banner and each reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(header)
        replies = [read_reply(sock)]
        for command in commands:
            sock.sendall(command)
            replies.append(read_reply(sock))
        return replies


def v2_ipv4(source, port, command=1):
    addresses = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 25)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | command, 0x11]) +
            struct.pack("!H", len(addresses)) + addresses)


SEND = [b"EHLO lb.test\r\n", b"MAIL FROM:<a@client.test>\r\n", b"RCPT TO:<b@far.example>\r\n"]


def test_v1_header_names_the_client_for_relay_rights(proxied_relay):
    stranger = dialogue(proxied_relay.smtp_port, b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 25\r\n", SEND)
    assert stranger[0].startswith(b"220 ")
    assert stranger[-1] == b"554 5.7.1 Relay access denied\r\n"
    inside = dialogue(proxied_relay.smtp_port, b"PROXY TCP4 127.0.0.5 127.0.0.1 40001 25\r\n",
                      SEND + [b"DATA\r\n", MESSAGE + b".\r\n", b"QUIT\r\n"])
    assert inside[3] == b"250 2.1.5 Ok\r\n"
    assert inside[5].startswith(b"250 2.0.0 Ok: queued as ")
    message_id = inside[5].split()[-1].decode()
    wait_until(lambda: f"id={message_id}" in proxied_relay.log_text(), 10, "accepted logged")
    assert "client=127.0.0.5" in [line for line in proxied_relay.log_text().splitlines()
                                  if "event=accepted" in line][0]
    proxied_relay.stop()
    body = proxied_relay.body(message_id)
    assert body.startswith(b"Received: from lb.test ([127.0.0.5])")
    assert strip_received(body) == MESSAGE


def test_v2_header_names_the_client_and_local_keeps_the_connection(proxied_relay):
    replies = dialogue(proxied_relay.smtp_port, v2_ipv4("192.0.2.9", 5000), SEND)
    assert replies[-1] == b"554 5.7.1 Relay access denied\r\n"
    # LOCAL (the balancer's health check): the connection's own address, 127.0.0.1.
    local = dialogue(proxied_relay.smtp_port, v2_ipv4("192.0.2.9", 5000, command=0), SEND)
    assert local[-1] == b"250 2.1.5 Ok\r\n"


@pytest.mark.parametrize("first_bytes", [b"EHLO client.test\r\n",
                                         b"PROXY TCP4 192.0.2.7 127.0.0.1 99999 25\r\n"])
def test_missing_or_bad_header_closes_without_a_banner(proxied_relay, first_bytes):
    with socket.create_connection(("127.0.0.1", proxied_relay.smtp_port), timeout=30) as sock:
        sock.sendall(first_bytes)
        assert sock.recv(4096) == b""  # closed, nothing said
    wait_until(lambda: "event=proxy_invalid" in proxied_relay.log_text(), 10, "logged")


class TlsOverSocket:
    """A TLS client on memory BIOs over a raw socket, so that its ClientHello can go out in the
    same packet as the PROXY header, as a balancer forwards them."""

    def __init__(self, sock):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.sock, self.incoming, self.outgoing = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing)
        self.step()  # the ClientHello, waiting in self.outgoing

    def step(self):
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def handshake(self, prefix):
        self.sock.sendall(prefix + self.outgoing.read())
        while not self.step():
            self.sock.sendall(self.outgoing.read())
            data = self.sock.recv(65536)
            assert data, "closed during the handshake"
            self.incoming.write(data)
        self.sock.sendall(self.outgoing.read())

    def command(self, line):
        if line:
            self.tls.write(line)
            self.sock.sendall(self.outgoing.read())
        reply = b""
        while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
            try:
                reply += self.tls.read(65536)
            except ssl.SSLWantReadError:
                data = self.sock.recv(65536)
                assert data, "closed"
                self.incoming.write(data)
        return reply


def test_smtps_listener_takes_the_header_then_tls(make_relay, tmp_path):
    certs = make_certificates(tmp_path / "certs")
    users = tmp_path / "users"
    users.write_text(f"alice:{password_hash('alice-secret')}\n")
    port = free_port()
    relay = make_relay(extra=f"""
[[listener]]
address = "127.0.0.1:{port}"
mode = "smtps"
proxy_protocol = true
[tls]
cert = "{certs['cert']}"
key = "{certs['key']}"
[auth]
users_file = "{users}"
""")
    wait_for_port(port, process=relay.process)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        client = TlsOverSocket(sock)
        # The header and the ClientHello in one write: the rest after the header is TLS.
        client.handshake(b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 465\r\n")
        assert client.command(b"").startswith(b"220 ")
        assert client.command(b"EHLO lb.test\r\n").startswith(b"250-")
        wrong = base64.b64encode(b"\0alice\0wrong").decode()
        assert client.command(f"AUTH PLAIN {wrong}\r\n".encode()).startswith(b"535 5.7.8")
    # The client the header named is the one the log (and the AUTH throttle) sees.
    wait_until(lambda: "event=auth_failed" in relay.log_text(), 10, "failure logged")
    assert "client=192.0.2.7" in [line for line in relay.log_text().splitlines()
                                  if "event=auth_failed" in line][0]
