"""The inbound policy checks against the real binary: a loopback DNS server serves the test
zones, and the client addresses come through the PROXY protocol (v1), as from a load balancer.
SPF, reverse DNS (iprev), DKIM and DMARC results land in one Authentication-Results header
(checked with python3-authres); SPF reject and rDNS require refuse at MAIL; a forged
Authentication-Results claiming our name is removed; relayq_policy_results_total counts."""
import base64
import socket

import authres
import dkim
import pytest
from nacl.signing import SigningKey

from conftest import DnsServer, metric_value, read_reply, wait_until

# Clients (named in the PROXY header): .10 has forward-confirmed rDNS and is pass.test's SPF
# address; .20's PTR name does not point back; .30's PTR lookup fails (SERVFAIL); .40 has none.
CONFIRMED, LIAR, BROKEN, NAMELESS = "192.0.2.10", "192.0.2.20", "192.0.2.30", "192.0.2.40"

ZONE = """$TTL 60
pass.test. TXT "v=spf1 ip4:192.0.2.10 -all"
_dmarc.pass.test. TXT "v=DMARC1; p=reject"
mail.pass.test. A 192.0.2.10
10.2.0.192.in-addr.arpa. PTR mail.pass.test.
20.2.0.192.in-addr.arpa. PTR liar.test.
liar.test. A 192.0.2.99
fail.test. TXT "v=spf1 -all"
_dmarc.fail.test. TXT "v=DMARC1; p=quarantine"
softfail.test. TXT "v=spf1 ~all"
none.test. A 192.0.2.99
{dkim_records}
"""

# Ed25519 key of signed.test (RFC 8463), for the messages python3-dkim signs below.
DKIM_SEED = bytes(range(32))
DKIM_PUBLIC = base64.b64encode(bytes(SigningKey(DKIM_SEED).verify_key)).decode()


def dkim_zone():
    return f'py._domainkey.signed.test. TXT "v=DKIM1; k=ed25519; p={DKIM_PUBLIC}"'


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path, ZONE.format(dkim_records=dkim_zone()),
                       servfail=["30.2.0.192.in-addr.arpa"])
    yield server
    server.stop()


def policy_relay(make_relay, dns, **modes):
    settings = "\n".join(f'{key} = "{value}"' for key, value in modes.items())
    return make_relay(listener_extra="proxy_protocol = true", relay_networks='["127.0.0.0/8"]',
                      relay_domains='["local.test"]',
                      extra=f'[dns]\nservers = ["127.0.0.1:{dns.port}"]\n\n[policy]\n{settings}\n')


def message(sender_domain, extra_headers=b""):
    return (extra_headers + b"From: someone@" + sender_domain.encode() + b"\r\n"
            b"To: u@local.test\r\nSubject: policy\r\nMessage-ID: <1@x>\r\n\r\nHello.\r\n")


def dialogue(port, client, sender, body=None, helo=b"client.example"):
    """One transaction from `client` (via PROXY v1); returns the replies, the last first."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"PROXY TCP4 {client} 127.0.0.1 40000 25\r\n".encode())
        replies = [read_reply(sock)]
        commands = [b"EHLO " + helo + b"\r\n", b"MAIL FROM:<" + sender.encode() + b">\r\n"]
        if body is not None:
            commands += [b"RCPT TO:<u@local.test>\r\n", b"DATA\r\n", body + b".\r\n"]
        for command in commands:
            sock.sendall(command)
            replies.append(read_reply(sock))
            if not replies[-1][:1] in (b"2", b"3"):
                break
        sock.sendall(b"QUIT\r\n")
        return replies


def queued(replies):
    assert replies[-1].startswith(b"250 2.0.0 Ok: queued as "), replies
    return replies[-1].split()[-1].decode()


def results_of(body):
    """The Authentication-Results headers of a stored message, parsed by python3-authres."""
    headers = body.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ").split("\r\n")
    found = [line.split(":", 1)[1].strip() for line in headers
             if line.lower().startswith("authentication-results:")]
    return [authres.AuthenticationResultsHeader.parse_value(value) for value in found]


def methods(header):
    return {result.method: result for result in header.results}


def test_tag_mode_writes_every_result_and_counts_them(make_relay, dns):
    relay = policy_relay(make_relay, dns, spf="tag", rdns="tag", dkim_verify="tag", dmarc="tag")
    forged = (b"Authentication-Results: relay.test; spf=pass smtp.mailfrom=x@fail.test\r\n"
              b"Authentication-Results: other.example; spf=pass smtp.mailfrom=x@fail.test\r\n")
    ids = {
        "pass": queued(dialogue(relay.smtp_port, CONFIRMED, "a@pass.test", message("pass.test"))),
        "fail": queued(dialogue(relay.smtp_port, LIAR, "a@fail.test",
                                message("fail.test", forged))),
        "softfail": queued(dialogue(relay.smtp_port, NAMELESS, "a@softfail.test",
                                    message("softfail.test"))),
        "none": queued(dialogue(relay.smtp_port, CONFIRMED, "a@none.test", message("none.test"))),
    }
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="spf", result="pass") == 1
    for result in ("fail", "softfail", "none"):
        assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                            check="spf", result=result) == 1
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="rdns", result="pass") == 2
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="rdns", result="fail") == 2
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="dmarc", result="pass") == 1
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="dmarc", result="fail") == 1
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="dkim", result="none") == 4
    relay.stop()

    for expected, message_id in ids.items():
        headers = results_of(relay.body(message_id))
        ours = [header for header in headers if header.authserv_id == "relay.test"]
        assert len(ours) == 1, headers
        found = methods(ours[0])
        assert found["spf"].result == expected
        assert found["dkim"].result == "none"
    passed = methods(results_of(relay.body(ids["pass"]))[0])
    assert passed["spf"].properties[0].value == "a@pass.test"
    assert passed["iprev"].result == "pass"
    assert passed["dmarc"].result == "pass"
    assert any(p.value == "pass.test" for p in passed["dmarc"].properties)
    failed_headers = results_of(relay.body(ids["fail"]))
    failed = methods(failed_headers[0])
    assert failed["iprev"].result == "fail"
    assert failed["dmarc"].result == "fail"
    # The forged header claiming relay.test is gone; the other server's stays.
    assert [header.authserv_id for header in failed_headers] == ["relay.test", "other.example"]
    assert methods(results_of(relay.body(ids["none"]))[0])["dmarc"].result == "none"


def test_spf_reject_refuses_fail_at_mail(make_relay, dns):
    relay = policy_relay(make_relay, dns, spf="reject")
    refused = dialogue(relay.smtp_port, CONFIRMED, "a@fail.test", message("fail.test"))
    assert refused[-1].startswith(b"550 5.7.23 "), refused
    assert b"fail.test" in refused[-1]
    # softfail and pass are accepted; the null sender is checked by its HELO name.
    queued(dialogue(relay.smtp_port, CONFIRMED, "a@softfail.test", message("softfail.test")))
    queued(dialogue(relay.smtp_port, CONFIRMED, "a@pass.test", message("pass.test")))
    null = dialogue(relay.smtp_port, CONFIRMED, "", message("fail.test"), helo=b"fail.test")
    assert null[-1].startswith(b"550 5.7.23 "), null
    assert metric_value(relay.metrics_port, "relayq_messages_rejected_total",
                        listener=f"127.0.0.1:{relay.smtp_port}", reason="spf") == 2
    wait_until(lambda: "event=sender_refused" in relay.log_text(), 10, "refusal logged")


def test_rdns_require_refuses_clients_without_fcrdns(make_relay, dns):
    relay = policy_relay(make_relay, dns, rdns="require")
    queued(dialogue(relay.smtp_port, CONFIRMED, "a@pass.test", message("pass.test")))
    for client in (LIAR, NAMELESS):
        refused = dialogue(relay.smtp_port, client, "a@pass.test", message("pass.test"))
        assert refused[-1].startswith(b"550 5.7.25 "), refused
        assert client.encode() in refused[-1]
    temporary = dialogue(relay.smtp_port, BROKEN, "a@pass.test", message("pass.test"))
    assert temporary[-1].startswith(b"450 4.7.25 "), temporary
    assert metric_value(relay.metrics_port, "relayq_policy_results_total",
                        check="rdns", result="temperror") == 1
    assert metric_value(relay.metrics_port, "relayq_messages_rejected_total",
                        listener=f"127.0.0.1:{relay.smtp_port}", reason="rdns") == 3


def test_dkim_signature_by_python3_dkim_verifies(make_relay, dns):
    relay = policy_relay(make_relay, dns, dkim_verify="tag", dmarc="tag")
    plain = message("signed.test")
    private = base64.b64encode(DKIM_SEED)
    signature = dkim.sign(plain, b"py", b"signed.test", private,
                          signature_algorithm=b"ed25519-sha256",
                          include_headers=[b"from", b"to", b"subject"], linesep=b"\r\n")
    good = queued(dialogue(relay.smtp_port, NAMELESS, "a@elsewhere.test", signature + plain))
    tampered = queued(dialogue(relay.smtp_port, NAMELESS, "a@elsewhere.test",
                               signature + plain.replace(b"Hello.", b"Hello!")))
    relay.stop()
    passed = methods(results_of(relay.body(good))[0])
    assert passed["dkim"].result == "pass"
    assert {p.type + "." + p.name: p.value for p in passed["dkim"].properties}["header.d"] == \
        "signed.test"
    # DKIM passes aligned with From: signed.test, whose DMARC record is missing: none.
    assert passed["dmarc"].result == "none"
    assert methods(results_of(relay.body(tampered))[0])["dkim"].result == "fail"
