"""Final delivery over LMTP to a real Dovecot: mail for a local domain routed with
`nexthop = "lmtp:..."` (TCP and unix socket) lands in the user's maildir, and is read back over
IMAP (imaplib) and POP3 (poplib) with its body intact and relayq's Received and
Authentication-Results headers; one message to several users gets a reply per user; the
submission listener with AUTH delivers the same way; with Dovecot stopped the message waits
in the queue and arrives exactly once when it is back. With verify_recipients, relayq asks
Dovecot at RCPT time: an unknown user is refused (550 5.1.1) instead of bounced later, and a
Dovecot that cannot answer gets the client a temporary refusal."""
import email
import imaplib
import poplib
import smtplib
import subprocess

import pytest

from conftest import RELAYQ_BIN, DnsServer, Dovecot, make_certificates, password_hash, wait_until

USERS = {"alice@local.test": "alice-secret", "bob@local.test": "bob-secret"}
# The sending client (127.0.0.1, outside relay.networks here) is sender.test's SPF address.
ZONE = """$TTL 60
sender.test. TXT "v=spf1 ip4:127.0.0.1 -all"
"""


@pytest.fixture
def dovecot(tmp_path):
    server = Dovecot(tmp_path, USERS).start()
    yield server
    server.close()


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path, ZONE)
    yield server
    server.stop()


def lmtp_relay(make_relay, dns, nexthop, listener_extra="", extra="", verify=False):
    """A relay that is local.test's MX: strangers (everyone but 10/8) may send to it."""
    return make_relay(
        relay_networks='["10.0.0.0/8"]', relay_domains='["local.test"]', delivery="",
        listener_extra=listener_extra,
        extra=f"""{extra}
[routes."local.test"]
nexthop = "{nexthop}"
verify_recipients = {"true" if verify else "false"}

[dns]
servers = ["127.0.0.1:{dns.port}"]

[policy]
spf = "tag"
dkim_verify = "tag"
dmarc = "tag"
""")


def message(subject, body="Hello from the LMTP test.\r\nA second line.\r\n"):
    return (f"From: carol@sender.test\r\nTo: alice@local.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@sender.test>\r\n\r\n{body}").encode()


def imap_messages(dovecot, user):
    """Every message in the user's INBOX, as email.message.Message objects."""
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port) as imap:
        imap.login(user, USERS[user])
        imap.select("INBOX", readonly=True)
        _, numbers = imap.search(None, "ALL")
        found = []
        for number in numbers[0].split():
            _, data = imap.fetch(number, "(RFC822)")
            found.append(email.message_from_bytes(data[0][1]))
        return found


def pop3_messages(dovecot, user):
    pop = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=30)
    try:
        pop.user(user)
        pop.pass_(USERS[user])
        count, _ = pop.stat()
        return [email.message_from_bytes(b"\r\n".join(pop.retr(i + 1)[1]))
                for i in range(count)]
    finally:
        pop.quit()


def wait_for_inbox(dovecot, user, count):
    wait_until(lambda: len(imap_messages(dovecot, user)) >= count, timeout=60,
               what=f"{count} messages in {user}'s INBOX")
    return imap_messages(dovecot, user)


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_mail_is_read_back_over_imap_and_pop3(make_relay, dns, dovecot, over):
    nexthop = (f"lmtp:127.0.0.1:{dovecot.lmtp_port}" if over == "tcp"
               else f"lmtp:unix:{dovecot.lmtp_socket}")
    relay = lmtp_relay(make_relay, dns, nexthop)
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as client:
        client.sendmail("carol@sender.test", ["alice@local.test"], message("imap-and-pop3"))

    [read] = wait_for_inbox(dovecot, "alice@local.test", 1)
    assert read["Subject"] == "imap-and-pop3"
    assert read.get_payload() == "Hello from the LMTP test.\r\nA second line.\r\n"
    # Dovecot's own Received comes first, then ours.
    assert any("by relay.test" in received for received in read.get_all("Received"))
    assert read["Authentication-Results"].startswith("relay.test;")
    assert "spf=pass" in read["Authentication-Results"]
    if over == "unix":
        wait_until(lambda: f"nexthop=unix:{dovecot.lmtp_socket} status=sent" in relay.log_text(),
                   what="the delivery over the unix socket in the log")

    [popped] = pop3_messages(dovecot, "alice@local.test")
    assert popped["Message-ID"] == "<imap-and-pop3@sender.test>"
    assert popped.get_payload().rstrip() == read.get_payload().rstrip()
    assert popped["Authentication-Results"] == read["Authentication-Results"]


def test_each_recipient_gets_its_own_reply(make_relay, dns, dovecot):
    """One message to two users: each gets its own reply after the content (RFC 2033)."""
    relay = lmtp_relay(make_relay, dns, f"lmtp:127.0.0.1:{dovecot.lmtp_port}")
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as client:
        client.sendmail("carol@sender.test", ["alice@local.test", "bob@local.test"],
                        message("two-users"))
    assert wait_for_inbox(dovecot, "alice@local.test", 1)[0]["Subject"] == "two-users"
    assert wait_for_inbox(dovecot, "bob@local.test", 1)[0]["Subject"] == "two-users"
    wait_until(lambda: relay.log_text().count("status=sent") >= 2, what="two deliveries")
    assert 'rcpt=bob@local.test nexthop=127.0.0.1' in relay.log_text()
    assert ':R2 Saved"' in relay.log_text()  # bob's own reply, not alice's


def test_submission_with_auth_delivers_to_the_mailbox(tmp_path, make_relay, dns, dovecot):
    certificates = make_certificates(tmp_path)
    users = tmp_path / "users"
    users.write_text(f"dave:{password_hash('dave-secret')}\n")
    relay = lmtp_relay(make_relay, dns, f"lmtp:127.0.0.1:{dovecot.lmtp_port}",
                       listener_extra='mode = "submission"',
                       extra=f'[tls]\ncert = "{certificates["cert"]}"\nkey = "{certificates["key"]}"\n\n'
                             f'[auth]\nusers_file = "{users}"\n')
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as client:
        client.starttls()
        client.login("dave", "dave-secret")
        client.sendmail("dave@local.test", ["bob@local.test"], message("submitted"))
    [read] = wait_for_inbox(dovecot, "bob@local.test", 1)
    assert read["Subject"] == "submitted"
    assert any("by relay.test" in received for received in read.get_all("Received"))


@pytest.mark.parametrize("retried_by", ["schedule", "operator"])
def test_mailbox_server_down_defers_then_delivers_once(make_relay, dns, dovecot, retried_by):
    """Back by itself on a short retry schedule; or, on the default one (5 minutes), at once
    with `relayq queue retry --all`, which also ends the destination's back-off."""
    dovecot.stop()
    schedule = ('[retry]\ninitial = "1s"\nfactor = 1.0\njitter = 0.0\n'
                if retried_by == "schedule" else "")
    relay = lmtp_relay(make_relay, dns, f"lmtp:127.0.0.1:{dovecot.lmtp_port}", extra=schedule)
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as client:
        client.sendmail("carol@sender.test", ["alice@local.test"], message("while-down"))
    wait_until(lambda: "status=deferred" in relay.log_text(), what="a deferral")

    dovecot.start()
    if retried_by == "operator":
        subprocess.run([RELAYQ_BIN, "queue", "retry", "--all", "-c", str(relay.config_path)],
                       check=True, capture_output=True)
    [read] = wait_for_inbox(dovecot, "alice@local.test", 1)
    assert read["Subject"] == "while-down"
    wait_until(lambda: "status=sent" in relay.log_text(), what="the delivery")
    relay.stop()
    assert relay.inspect() == []  # nothing left to send again
    assert len(imap_messages(dovecot, "alice@local.test")) == 1


def rcpt_replies(port, recipients):
    """MAIL, then one RCPT per recipient (from a stranger); the (code, text) of each RCPT."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.sender.test")
        client.mail("carol@sender.test")
        return [client.rcpt(recipient) for recipient in recipients]


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_unknown_local_users_are_refused_at_rcpt(make_relay, dns, dovecot, over):
    nexthop = (f"lmtp:127.0.0.1:{dovecot.lmtp_port}" if over == "tcp"
               else f"lmtp:unix:{dovecot.lmtp_socket}")
    relay = lmtp_relay(make_relay, dns, nexthop, verify=True)
    replies = rcpt_replies(relay.smtp_port, ["alice@local.test", "nobody@local.test",
                                             "ALICE@local.test"])
    assert replies[0][0] == 250
    assert replies[1] == (550, b"5.1.1 <nobody@local.test>: Recipient address rejected: "
                               b"no such user")
    assert replies[2][0] == 250
    wait_until(lambda: "event=recipient_refused" in relay.log_text(), what="the log line")
    assert "rcpt=nobody@local.test reason=unknown" in relay.log_text()

    # A whole message to a known user still arrives; the unknown one never reaches the queue.
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as client:
        refused = client.sendmail("carol@sender.test", ["alice@local.test", "nobody@local.test"],
                                  message("verified"))
    assert set(refused) == {"nobody@local.test"}
    assert wait_for_inbox(dovecot, "alice@local.test", 1)[0]["Subject"] == "verified"
    relay.stop()
    assert relay.inspect() == []  # no bounce waiting for anyone


def test_recipients_cannot_be_verified_while_dovecot_is_down(make_relay, dns, dovecot):
    relay = lmtp_relay(make_relay, dns, f"lmtp:127.0.0.1:{dovecot.lmtp_port}", verify=True)
    dovecot.stop()
    [reply] = rcpt_replies(relay.smtp_port, ["alice@local.test"])
    assert reply[0] == 451
    assert reply[1].startswith(b"4.4.3 <alice@local.test>: Recipient address rejected")
    wait_until(lambda: "event=recipient_probe_failed rcpt=alice@local.test" in relay.log_text(),
               what="the probe's failure in the log")

    dovecot.start()
    assert rcpt_replies(relay.smtp_port, ["alice@local.test"])[0][0] == 250
