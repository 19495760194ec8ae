"""DKIM signing of our own users' mail against the real binary: [[dkim.sign]] keys (RSA-2048
and Ed25519, made by the openssl command line), the records `relayq dkim-record` prints, and
two independent verifiers, python3-dkim and npm's mailauth, given those records. A key that
does not load refuses the start and the reload; a reload re-reads the keys."""
import json
import re
import signal
import subprocess
from pathlib import Path

import dkim
import pytest

from conftest import RELAYQ_BIN, Relay, send_message, wait_until

MAILAUTH = Path(__file__).resolve().parents[1] / "support" / "mailauth" / "node_modules" / ".bin" / "mailauth"

MESSAGE = (b"From: Alice <alice@sign.test>\r\nTo: bob@far.example\r\nSubject: signed\r\n"
           b"Date: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <s1@sign.test>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello,\r\n  signed  world.\r\n")


def make_key(path: Path, algorithm):
    options = ["-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "RSA" else []
    subprocess.run(["openssl", "genpkey", "-algorithm", algorithm, *options, "-out", str(path)],
                   check=True, capture_output=True)
    return path


def signing_config(keys):
    return "\n".join(f'[[dkim.sign]]\ndomain = "sign.test"\nselector = "{selector}"\nkey = "{key}"\n'
                     for selector, key in keys)


def dkim_records(config_path):
    """{name: record} from `relayq dkim-record`, the strings of each record joined."""
    out = subprocess.run([RELAYQ_BIN, "dkim-record", "--config", str(config_path)], check=True,
                         capture_output=True, text=True).stdout
    records = {}
    for line in out.splitlines():
        name = line.split()[0].rstrip(".")
        assert re.fullmatch(r'\S+\. IN TXT \( ("[^"]{1,255}" ?)+ \)', line), line
        records[name] = "".join(re.findall(r'"([^"]*)"', line))
    return records


@pytest.fixture
def keys(tmp_path):
    return [("rsa", make_key(tmp_path / "rsa.pem", "RSA")),
            ("ed", make_key(tmp_path / "ed.pem", "ED25519"))]


def test_signed_mail_verifies_with_python3_dkim_and_mailauth(make_relay, keys, tmp_path):
    relay = make_relay(extra=signing_config(keys))
    records = dkim_records(relay.config_path)
    assert set(records) == {"rsa._domainkey.sign.test", "ed._domainkey.sign.test"}
    assert records["rsa._domainkey.sign.test"].startswith("v=DKIM1; k=rsa; p=")
    assert records["ed._domainkey.sign.test"].startswith("v=DKIM1; k=ed25519; p=")
    ours = send_message(relay.smtp_port, ["bob@far.example"], "alice@sign.test", MESSAGE)
    # Mail from another domain is not signed.
    theirs = send_message(relay.smtp_port, ["bob@far.example"], "x@other.test",
                          MESSAGE.replace(b"alice@sign.test", b"x@other.test"))
    relay.stop()
    signed = relay.body(ours)
    assert signed.count(b"DKIM-Signature:") == 2
    assert b"DKIM-Signature:" not in relay.body(theirs)
    header = signed.split(b"\r\n\r\n")[0].decode()
    assert "c=relaxed/relaxed" in header.replace("\r\n\t", " ").replace(" ", "")
    assert re.search(r"h=[^;]*from:[^;]*from", header.replace("\r\n", "").replace("\t", "").lower())

    def txt(name, timeout=5):
        return records.get(name.decode().rstrip(".")).encode()

    verifier = dkim.DKIM(signed)
    for index in range(2):
        assert verifier.verify(idx=index, dnsfunc=txt), f"python3-dkim refused signature {index}"

    assert mailauth_results(signed, records, tmp_path) == {("sign.test", "rsa"): "pass",
                                                           ("sign.test", "ed"): "pass"}

    # One changed body byte, and both verifiers refuse.
    broken = signed.replace(b"signed  world", b"signed  World")
    assert not dkim.verify(broken, dnsfunc=txt)
    # mailauth calls a body hash mismatch "neutral" (RFC 6376 6.1.3 leaves the word open).
    assert set(mailauth_results(broken, records, tmp_path).values()) <= {"fail", "neutral"}


def mailauth_results(message, records, tmp_path):
    """{(domain, selector): result} of npm's mailauth, its DNS answered from `records`."""
    cache = tmp_path / "dns.json"
    cache.write_text(json.dumps({name: {"TXT": [[record[i:i + 255] for i in range(0, len(record), 255)]]}
                                 for name, record in records.items()}))
    (tmp_path / "message.eml").write_bytes(message)
    report = json.loads(subprocess.run(
        [str(MAILAUTH), "report", "--dns-cache", str(cache), "--client-ip", "127.0.0.1",
         "--sender", "alice@sign.test", "--helo", "localhost", str(tmp_path / "message.eml")],
        check=True, capture_output=True, text=True).stdout)
    return {(r["signingDomain"], r["selector"]): r["status"]["result"]
            for r in report["dkim"]["results"]}


def test_a_key_that_does_not_load_refuses_start_and_reload(tmp_path, keys):
    short = tmp_path / "short.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(short)], check=True, capture_output=True)
    bad = Relay(tmp_path / "bad", extra=signing_config([("s", short)]))
    result = subprocess.run([RELAYQ_BIN, "serve", "--config", str(bad.config_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "dkim.sign[0].key" in result.stdout + result.stderr

    relay = Relay(tmp_path / "good", extra=signing_config(keys[:1])).start()
    try:
        text = relay.config_path.read_text()
        relay.config_path.write_text(text + signing_config([("s", tmp_path / "missing.pem")]))
        relay.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "event=reload_refused" in relay.log_text(), 10, "reload refused")
        assert "dkim.sign[1].key" in relay.log_text()
        # The old key still signs.
        message_id = send_message(relay.smtp_port, ["bob@far.example"], "alice@sign.test", MESSAGE)
        relay.stop()
        assert relay.body(message_id).count(b"DKIM-Signature:") == 1
    finally:
        if relay.process is not None:
            relay.kill()
