"""The PROXY protocol (v1 and v2) on a listener behind a trusted load balancer, against the
real binary: the client the header names is the one relay rights, Received: and the logs see;
a LOCAL header keeps the connection's own address; no header, or a bad one, closes the
connection before the banner."""
import socket
import struct

import pytest

from conftest import read_reply, strip_received, wait_until

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
