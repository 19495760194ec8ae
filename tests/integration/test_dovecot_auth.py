"""Submission users from a real Dovecot's auth service ([auth] dovecot), over TCP and over its
unix socket: AUTH PLAIN and LOGIN with the right password are accepted and the message queued,
a wrong one gets 535, a Dovecot that is down gets 454 (and a log line, and no failed password
counted), SIGHUP switches to another Dovecot, and check-config refuses both user databases at
once or a malformed value. Dovecot answers a wrong password after 2 s (its auth_failure_delay),
so failures are tried once each."""
import re
import signal
import smtplib
import ssl
import subprocess

import pytest

from conftest import RELAYQ_BIN, Dovecot, free_port, make_certificates, wait_until

USER, PASSWORD = "alice@local.test", "secret"
MESSAGE = b"Subject: from a Dovecot user\r\n\r\nhello\r\n"


@pytest.fixture
def dovecot(tmp_path):
    server = Dovecot(tmp_path, users={USER: PASSWORD})
    try:
        yield server.start()
    finally:
        server.stop()


def endpoint(dovecot, transport):
    """[auth] dovecot for `transport`: the inet listener, or the auth-client unix socket."""
    if transport == "tcp":
        return f"127.0.0.1:{dovecot.auth_port}"
    return f"unix:{dovecot.dir / 'run' / 'auth-client'}"


@pytest.fixture
def make_submission(make_relay, tmp_path):
    """A relay whose listener is a submission one (STARTTLS, then AUTH) with `[auth] dovecot`."""
    certs = make_certificates(tmp_path / "certs")

    def factory(dovecot_setting):
        return make_relay(listener_extra='mode = "submission"', extra=f"""
[tls]
cert = "{certs['cert']}"
key = "{certs['key']}"
[auth]
dovecot = "{dovecot_setting}"
""")
    return factory


def submission_session(relay):
    """An SMTP session on the relay's submission listener, through STARTTLS and EHLO."""
    smtp = smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30)
    smtp.ehlo("client.test")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp.starttls(context=context)
    smtp.ehlo("client.test")
    assert smtp.has_extn("auth")
    return smtp


def authenticate(smtp, mechanism, user, password):
    """smtplib's AUTH exchange for `mechanism`: (code, text) of the last reply."""
    smtp.user, smtp.password = user, password
    authobject = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login}[mechanism]
    try:
        return smtp.auth(mechanism, authobject)
    except smtplib.SMTPAuthenticationError as refused:
        return refused.smtp_code, refused.smtp_error


def logged(relay, event):
    """The log's lines of `event` so far."""
    return [line for line in relay.log_text().splitlines() if f"event={event} " in line]


def log_lines(relay, event, count=1):
    """The log's lines of `event`, once there are `count` (the log is written asynchronously)."""
    wait_until(lambda: len(logged(relay, event)) >= count, 10, f"{count} event={event} lines")
    return logged(relay, event)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_right_password_is_accepted_and_the_message_queued(dovecot, make_submission, transport,
                                                            mechanism):
    relay = make_submission(endpoint(dovecot, transport))
    with submission_session(relay) as smtp:
        assert authenticate(smtp, mechanism, USER, PASSWORD) == (
            235, b"2.7.0 Authentication successful")
        assert smtp.sendmail("alice@local.test", ["bob@far.example"], MESSAGE) == {}
    assert any(USER in line for line in log_lines(relay, "auth_ok"))
    accepted = log_lines(relay, "accepted")
    assert len(accepted) == 1 and f"user={USER}" in accepted[0]
    relay.stop()
    [envelope] = relay.inspect()
    assert [r["address"] for r in envelope["recipients"]] == ["bob@far.example"]


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_wrong_password_gets_535(dovecot, make_submission, transport):
    relay = make_submission(endpoint(dovecot, transport))
    with submission_session(relay) as smtp:
        assert authenticate(smtp, "PLAIN", USER, "wrong") == (
            535, b"5.7.8 Authentication credentials invalid")
        code, _ = smtp.docmd("MAIL", "FROM:<alice@local.test>")
        assert code == 530  # still not authenticated
    [failed] = log_lines(relay, "auth_failed")
    assert f"user={USER}" in failed and "recent_failures=1" in failed
    assert not logged(relay, "auth_unavailable")


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_dovecot_down_gets_454_and_is_no_failed_password(dovecot, make_submission, transport):
    setting = endpoint(dovecot, transport)
    relay = make_submission(setting)
    dovecot.stop()
    with submission_session(relay) as smtp:
        # More tries than a session's 3 failed passwords: none of them counts as one.
        for mechanism in ["PLAIN", "LOGIN", "PLAIN", "LOGIN"]:
            assert authenticate(smtp, mechanism, USER, PASSWORD) == (
                454, b"4.7.0 Temporary authentication failure, try again later")
        assert smtp.noop()[0] == 250
    unavailable = log_lines(relay, "auth_unavailable", 4)
    assert len(unavailable) == 4
    assert f'error="dovecot {setting}: connect: ' in unavailable[0], unavailable[0]
    assert f"user={USER}" in unavailable[0]
    assert not logged(relay, "auth_failed")


def test_sighup_switches_to_another_dovecot(dovecot, make_submission):
    nowhere = f"127.0.0.1:{free_port()}"
    relay = make_submission(nowhere)
    with submission_session(relay) as smtp:
        assert authenticate(smtp, "PLAIN", USER, PASSWORD)[0] == 454
    text = relay.config_path.read_text()
    relay.config_path.write_text(text.replace(nowhere, endpoint(dovecot, "unix")))
    relay.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "event=reloaded" in relay.log_text(), 10, "reloaded")
    with submission_session(relay) as smtp:
        assert authenticate(smtp, "PLAIN", USER, PASSWORD)[0] == 235


def check_config(tmp_path, auth):
    path = tmp_path / "relayq.toml"
    path.write_text(f"""[[listener]]
address = "127.0.0.1:{free_port()}"
mode = "submission"
plaintext_auth = true

[auth]
{auth}
""")
    result = subprocess.run([RELAYQ_BIN, "check-config", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr.strip(), str(path)


def test_check_config_refuses_both_user_databases_and_malformed_values(tmp_path):
    code, error, path = check_config(
        tmp_path, 'users_file = "/etc/relayq/users"\ndovecot = "unix:/run/dovecot/auth-client"')
    assert code == 2
    assert error == f"{path}:8: auth.dovecot: set auth.users_file or auth.dovecot, not both"

    code, error, path = check_config(tmp_path, 'dovecot = "mail.example:12345"')
    assert code == 2
    assert re.fullmatch(rf'{re.escape(path)}:7: auth\.dovecot: not an IP address: '
                        r'"mail\.example".*', error), error
    code, error, _ = check_config(tmp_path, 'dovecot = "unix:run/auth-client"')
    assert code == 2 and "auth.dovecot: not an absolute socket path" in error

    assert check_config(tmp_path, 'dovecot = "unix:/run/dovecot/auth-client"')[0] == 0
    assert check_config(tmp_path, 'dovecot = "[::1]:12345"')[0] == 0
