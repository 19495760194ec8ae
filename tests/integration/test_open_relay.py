"""Open-relay tricks against the real binary, as relay scanners try them (nmap's
smtp-open-relay): source routing in the local part to an accepted domain, from a client without
relay rights, is refused with 550 5.7.1; a site that needs it can allow it."""
import smtplib
import socket

import pytest

from conftest import wait_until

ROUTED = ["user%other.test@local.test", '"user@other.test"@local.test', "other.test!user@local.test",
          '"user%other.test"@local.test', '"user@other.test"@LOCAL.TEST',
          "user%other.test%local.test@local.test"]


def rcpt_replies(port, recipients):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("scanner.test")
        assert smtp.mail("probe@scanner.test")[0] == 250
        return [smtp.rcpt(recipient) for recipient in recipients]


@pytest.mark.parametrize("allow", [False, True])
def test_source_routed_recipients_from_strangers(make_relay, allow):
    # 127.0.0.1 is outside relay.networks: a stranger that may send to local.test only.
    domains = '["local.test"]' + ("\nallow_untrusted_routing = true" if allow else "")
    relay = make_relay(relay_networks='["10.255.255.0/24"]', relay_domains=domains)
    replies = rcpt_replies(relay.smtp_port, ROUTED + ["user@local.test", "user@other.test"])
    for address, (code, text) in zip(ROUTED, replies):
        if allow:
            assert code == 250, address
        else:
            assert (code, text[:5]) == (550, b"5.7.1"), address
    assert replies[-2][0] == 250  # a plain local recipient
    assert replies[-1][0] == 554  # a foreign one: no relay for strangers either way


def test_connections_per_client_address_are_limited(make_relay):
    """From one address outside relay.networks (named by a PROXY header, as behind a balancer):
    two at once, then 421 4.7.0; another address is not affected; relay.networks are exempt."""
    relay = make_relay(listener_extra="proxy_protocol = true\nmax_connections_per_client = 2",
                       relay_networks='["127.0.0.0/8"]')

    def connect(client):
        sock = socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=30)
        sock.sendall(f"PROXY TCP4 {client} 127.0.0.1 40000 25\r\n".encode())
        return sock, sock.makefile("rb").readline()

    held = [connect("192.0.2.7"), connect("192.0.2.7")]
    assert all(banner.startswith(b"220 ") for _, banner in held)
    sock, refused = connect("192.0.2.7")
    assert refused.startswith(b"421 4.7.0 "), refused
    sock.close()
    other, banner = connect("192.0.2.8")
    assert banner.startswith(b"220 ")
    trusted = [connect("127.0.0.9") for _ in range(3)]
    assert all(banner.startswith(b"220 ") for _, banner in trusted)
    held[0][0].close()
    # Once one closes, the address may connect again.
    wait_until(lambda: connect_ok(connect, "192.0.2.7"), 10, "a slot freed")
    for sock, _ in held[1:] + [(other, None)] + trusted:
        sock.close()
    wait_until(lambda: "event=client_limited" in relay.log_text(), 10, "the refusal logged")


def connect_ok(connect, client):
    sock, banner = connect(client)
    sock.close()
    return banner.startswith(b"220 ")
